import pytest

from apps.audit import context


@pytest.fixture(autouse=True)
def _fresh_audit_context():
    """Each test starts and ends with an empty audit context (request id, principal)."""
    context.reset()
    yield
    context.reset()
