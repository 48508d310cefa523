# ruff: noqa: F811 - pytest fixtures imported from other modules are parameters here
"""Deployment fixtures: a model whose versions have real stored bytes, an approved release, targets, people."""

from __future__ import annotations

import io

import pytest

from apps.accounts.principals import principal_for_user
from apps.core.storage import get_storage
from apps.deployments import services
from apps.releases import services as releases
from tests.factories.registry import ModelVersionFactory
from tests.releases.conftest import (  # noqa: F401 - fixtures shared with the release tests
    author,
    decided,
    manager,
    model,
    officer,
    production,
    request_release,
    requester,
    reviewer,
    staging,
)


def who(user):
    return principal_for_user(user)


def stored_version(model, author, number: int, payload: bytes):
    """A ready version whose artifact bytes are in this test's storage (what a worker re-hashes)."""
    stored = get_storage().save(io.BytesIO(payload), kind="artifacts")
    return ModelVersionFactory(
        model=model, number=number, created_by=author, artifact_uri=stored.key, sha256=stored.sha256, size=stored.size
    )


@pytest.fixture
def version(model, author):
    return stored_version(model, author, 1, b"onnx bytes of version 1")


@pytest.fixture
def version2(model, author):
    return stored_version(model, author, 2, b"onnx bytes of version 2")


@pytest.fixture
def admin(make_user):
    return make_user("admin", username="ada")


@pytest.fixture
def viewer(make_user, team):
    return make_user("viewer", username="vic", team=team)


@pytest.fixture
def lab(admin, staging):
    """A local target serving staging."""
    return services.target_create(actor=who(admin), name="lab", kind="local", environment="staging")


@pytest.fixture
def approve(request_release, requester, reviewer, decided):
    """approve(version, env="staging") -> an approved release whose stored gate decision is current."""

    def go(version, environment="staging", **kw):
        release = request_release(requester, version, environment, **kw)
        releases.approval_decide(actor=who(reviewer), release_id=release.public_id, decision="approve")
        decided()
        release.refresh_from_db()
        assert release.status == "approved", release.status
        return release

    return go


@pytest.fixture
def release(approve, version, staging):
    return approve(version)


@pytest.fixture
def start(manager):
    """start(release, target="lab", **kw) -> a deployment started by the release manager."""

    def go(release, target="lab", actor=None, **kw):
        return services.deployment_start(actor=actor or who(manager), release_id=release.public_id, target=target, **kw)

    return go
