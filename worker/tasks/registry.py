"""Registry jobs: verify uploaded or referenced artifacts and datasets."""
