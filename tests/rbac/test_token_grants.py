"""Bearer-token requests read the token and its subject's grants in one query; those grants must be
exactly the ones rbac reads on its own for that principal, for every kind of subject."""

from __future__ import annotations

import pytest

from apps.accounts import services as accounts
from apps.accounts import tokens
from apps.accounts.authentication import _find_token
from apps.accounts.principals import principal_for_token
from apps.rbac import services as rbac
from apps.rbac.services import Grant
from tests.factories.accounts import ServiceAccountFactory, TeamFactory
from tests.factories.registry import RegisteredModelFactory

pytestmark = pytest.mark.django_db


def grants_read_with_token(system, **subject) -> tuple[set[Grant], set[Grant]]:
    _, raw = accounts.token_create(actor=system, name="t", scopes=["read"], **subject)
    token, rows = _find_token(tokens.parse(raw)[0])
    principal = principal_for_token(token)
    return {Grant(*row) for row in rows if row[0] is not None}, set(rbac._load_grants(principal))


@pytest.fixture
def world(system, make_user, team, other_team):
    """Bindings of every shape, for several subjects, so a wrong join would pick up someone else's."""
    model = RegisteredModelFactory(owner_team=team)
    third = TeamFactory(name="third")
    alice = make_user("contributor", username="alice", team=team, member_of=[team, other_team])
    rbac.role_grant(actor=system, subject=alice, role="viewer", model=model)
    rbac.role_grant(actor=system, subject=team, role="reviewer", team=team)
    rbac.role_grant(actor=system, subject=other_team, role="viewer")
    rbac.role_grant(actor=system, subject=third, role="release_manager")  # alice is not in it
    bob = make_user("auditor", username="bob", member_of=[third])
    loner = make_user(username="loner")
    ci = ServiceAccountFactory(owner=alice, team=team)
    rbac.role_grant(actor=system, subject=ci, role="contributor", team=team)
    bare_ci = ServiceAccountFactory(owner=alice)
    return {"alice": alice, "bob": bob, "loner": loner, "ci": ci, "bare_ci": bare_ci}


@pytest.mark.parametrize("who", ["alice", "bob", "loner"])
def test_a_users_token_brings_their_own_and_their_teams_grants(system, world, who):
    with_token, on_its_own = grants_read_with_token(system, user=world[who])
    assert with_token == on_its_own
    if who == "alice":  # own contributor + own viewer on a model + two teams' bindings
        assert {g.role for g in with_token} == {"contributor", "viewer", "reviewer"} and len(with_token) == 4
    if who == "loner":
        assert with_token == set()


@pytest.mark.parametrize("who", ["ci", "bare_ci"])
def test_a_service_accounts_token_brings_only_its_own_grants_not_its_owners(system, world, who):
    with_token, on_its_own = grants_read_with_token(system, service_account=world[who])
    assert with_token == on_its_own
    assert {g.role for g in with_token} == ({"contributor"} if who == "ci" else set())


def test_a_request_uses_the_grants_read_with_its_token(api_client_for, world, django_assert_num_queries):
    # the token with its grants, then the page's count and rows: no query for the grants of their own
    client = api_client_for(world["alice"], scopes=["read"])
    client.get("/api/v1/models/")  # the first use writes last_used_at
    with django_assert_num_queries(3):
        response = client.get("/api/v1/models/")
    assert response.status_code == 200 and len(response.json()["results"]) == 1
