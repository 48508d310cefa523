"""Deployment target drivers (only workers import them): one module per target kind, one interface (``base``)."""
