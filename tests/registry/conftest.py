from tests.registry.fixtures import contributor, contributor_principal, model, s3  # noqa: F401
