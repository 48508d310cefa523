"""Release requests, approvals with four eyes, environments, and the gate CI asks."""
