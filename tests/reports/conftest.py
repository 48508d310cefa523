# ruff: noqa: F811 - pytest fixtures imported from other modules are parameters here
"""Report fixtures: an approved release whose decision rests on real evidence and the shipped packs."""

from __future__ import annotations

import pytest

from apps.accounts.principals import principal_for_user
from tests.factories.policies import compliant_model, compliant_version


@pytest.fixture
def approved(request_release, requester, reviewer, decided, team):
    from apps.releases import services as releases

    version = compliant_version(compliant_model(name="credit-scoring", owner_team=team))
    release = request_release(requester, version, "staging")
    releases.approval_decide(
        actor=principal_for_user(reviewer), release_id=release.public_id, decision="approve", comment="checked"
    )
    decided()
    release.refresh_from_db()
    assert release.status == "approved"
    return release
