"""The admin API: people, teams and members, service accounts and role bindings under /api/v1/.

Admins read and write; auditors read; everyone else is refused (and the refusal is audited).
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.accounts import services as accounts
from apps.accounts.models import ApiToken, ServiceAccount, Team, TeamMembership, User
from apps.rbac import services as rbac
from apps.rbac.models import RoleBinding
from tests.factories.accounts import ServiceAccountFactory, TeamFactory, UserFactory
from tests.factories.registry import RegisteredModelFactory

pytestmark = pytest.mark.django_db

API = "/api/v1"
PROBLEM_JSON = "application/problem+json"


@pytest.fixture
def world(make_user, system, team):
    """A team "credit" with alice, a CI account she owns, and one binding (alice: contributor on credit)."""
    alice = make_user(username="alice", member_of=[team])
    account = ServiceAccountFactory(name="ci-credit", owner=alice, team=team)
    binding = rbac.role_grant(actor=system, subject=alice, role="contributor", team=team)
    return {"alice": alice, "account": account, "binding": binding, "team": team}


@pytest.fixture
def admin_user(make_user):
    return make_user("admin", username="root")


@pytest.fixture
def admin(api_client_for, admin_user):
    return api_client_for(admin_user)


@pytest.fixture
def auditor(api_client_for, make_user):
    return api_client_for(make_user("auditor", username="erin"))


@pytest.fixture
def outsiders(api_client_for, make_user, team):
    """A person with no role, and a contributor on a team: neither may see accounts."""
    return {
        "no role": api_client_for(make_user(username="nobody")),
        "contributor": api_client_for(make_user("contributor", username="carl", team=team, member_of=[team])),
    }


def reads(world) -> list[str]:
    return [
        f"{API}/users/",
        f"{API}/users/alice/",
        f"{API}/teams/",
        f"{API}/teams/credit/",
        f"{API}/service-accounts/",
        f"{API}/role-bindings/",
        f"{API}/role-bindings/{world['binding'].pk}/",
    ]


def writes(world) -> list[tuple[str, str, dict | None, str]]:
    """(method, path, body, the audit action a refusal is recorded under)."""
    return [
        ("post", f"{API}/users/", {"username": "mallory"}, "user.created"),
        ("patch", f"{API}/users/alice/", {"email": "x@example.test"}, "user.updated"),
        ("patch", f"{API}/users/alice/", {"is_active": False}, "user.deactivated"),
        ("post", f"{API}/teams/", {"name": "shadow"}, "team.created"),
        ("post", f"{API}/teams/credit/members/", {"username": "root"}, "team.member_added"),
        ("delete", f"{API}/teams/credit/members/alice/", None, "team.member_removed"),
        ("post", f"{API}/service-accounts/", {"name": "ci-evil", "owner": "alice"}, "service_account.created"),
        (
            "post",
            f"{API}/role-bindings/",
            {"subject_type": "user", "subject": "alice", "role": "admin"},
            "role_binding.created",
        ),
        ("delete", f"{API}/role-bindings/{world['binding'].pk}/", None, "role_binding.deleted"),
    ]


def state() -> tuple:
    """Everything a write could change."""
    return (
        list(User.objects.order_by("pk").values_list("username", "email", "is_active")),
        list(Team.objects.order_by("pk").values_list("name")),
        list(TeamMembership.objects.order_by("pk").values_list("team_id", "user_id")),
        list(ServiceAccount.objects.order_by("pk").values_list("name")),
        list(RoleBinding.objects.order_by("pk").values_list("pk", "role")),
        list(ApiToken.objects.filter(revoked_at__isnull=False).values_list("pk")),
    )


def send(client: APIClient, method: str, path: str, body: dict | None = None):
    return getattr(client, method)(path, body, format="json") if body is not None else getattr(client, method)(path)


# ---- the triad: anonymous, unpermitted, permitted -----------------------------------------


def test_every_endpoint_needs_authentication(anon_client, world):
    for path in reads(world):
        response = anon_client.get(path)
        assert response.status_code == 401, path
        assert response["Content-Type"] == PROBLEM_JSON
    for method, path, body, _ in writes(world):
        assert send(anon_client, method, path, body).status_code == 401, (method, path)


@pytest.mark.parametrize("who", ["no role", "contributor"])
def test_people_without_an_accounts_role_can_read_nothing(outsiders, world, audit_mark, who):
    client = outsiders[who]
    for path in reads(world):
        # when
        mark = audit_mark()
        response = client.get(path)
        # then: refused, as problem+json, and the refusal is in the trail
        assert response.status_code == 403, path
        assert response["Content-Type"] == PROBLEM_JSON
        assert "accounts.view" in response.json()["detail"]
        assert [(e.action, e.outcome) for e in mark.new()] == [("accounts.denied", "denied")], path


@pytest.mark.parametrize("who", ["no role", "contributor"])
def test_people_without_an_accounts_role_can_change_nothing(outsiders, world, audit_mark, who):
    client = outsiders[who]
    before = state()
    for method, path, body, action in writes(world):
        # when
        mark = audit_mark()
        response = send(client, method, path, body)
        # then: refused before any name is looked up, recorded under the change it would have made
        assert response.status_code == 403, (method, path, response.content)
        assert response["Content-Type"] == PROBLEM_JSON
        assert [(e.action, e.outcome) for e in mark.new()] == [(action, "denied")], (method, path)
    assert state() == before


def test_an_auditor_bound_to_one_team_reads_nothing(api_client_for, make_user, world, team):
    client = api_client_for(make_user("auditor", username="scoped", team=team))
    assert client.get(f"{API}/users/").status_code == 403
    assert client.get(f"{API}/role-bindings/").status_code == 403


def test_an_auditor_reads_everything(auditor, world):
    for path in reads(world):
        response = auditor.get(path)
        assert response.status_code == 200, path


def test_an_auditor_changes_nothing_and_each_attempt_is_audited(auditor, world, audit_mark):
    before = state()
    for method, path, body, action in writes(world):
        mark = audit_mark()
        response = send(auditor, method, path, body)
        assert response.status_code == 403, (method, path, response.content)
        assert "accounts.manage" in response.json()["detail"]
        (event,) = mark.new()
        assert (event.action, event.outcome, event.actor_name) == (action, "denied", "erin")
    assert state() == before


def test_an_admin_reads_everything(admin, world):
    for path in reads(world):
        assert admin.get(path).status_code == 200, path


def test_an_admin_token_without_the_admin_scope_reads_but_cannot_write(api_client_for, admin_user, world):
    client = api_client_for(admin_user, scopes=["read"])
    assert client.get(f"{API}/users/").status_code == 200
    response = client.post(f"{API}/teams/", {"name": "scoped"}, format="json")
    assert response.status_code == 403
    assert "admin" in response.json()["detail"]
    assert not Team.objects.filter(name="scoped").exists()


# ---- users ----------------------------------------------------------------------------------


def test_the_user_list_shows_people_with_their_teams(admin, world):
    body = admin.get(f"{API}/users/").json()
    rows = {row["username"]: row for row in body["results"]}
    assert set(rows) >= {"alice", "root"}
    alice = rows["alice"]
    assert alice["teams"] == ["credit"]
    assert alice["is_active"] is True
    assert alice["email"] == "alice@example.test"
    assert alice["url"].endswith("/api/v1/users/alice/")
    assert "password" not in alice


def test_the_user_list_filters(admin, world, make_user, system):
    make_user(username="zed")
    accounts.user_update(actor=system, user="zed", changes={"is_active": False})
    assert names(admin.get(f"{API}/users/?team=credit")) == ["alice"]
    assert names(admin.get(f"{API}/users/?search=ALI")) == ["alice"]
    assert names(admin.get(f"{API}/users/?is_active=false")) == ["zed"]
    response = admin.get(f"{API}/users/?is_active=maybe")
    assert response.status_code == 400
    assert response.json()["errors"] == {"is_active": ["Expected true or false."]}


def test_an_admin_creates_a_user(admin, admin_user, audit_mark):
    mark = audit_mark()
    # when
    response = admin.post(
        f"{API}/users/",
        {"username": "dana", "email": "dana@example.test", "first_name": "Dana", "password": "a-long-Passphrase-42"},
        format="json",
    )
    # then
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["username"] == "dana" and body["display_name"] == "Dana" and body["teams"] == []
    assert response["Location"] == body["url"]
    assert User.objects.get(username="dana").check_password("a-long-Passphrase-42")
    (event,) = mark.new()
    assert (event.action, event.outcome, event.actor_id, event.target_name) == (
        "user.created",
        "success",
        str(admin_user.pk),
        "dana",
    )
    assert event.after == {"username": "dana", "email": "dana@example.test"}
    assert "Passphrase" not in str(event.after)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "username"),
        ({"username": "no spaces"}, "username"),
        ({"username": "dana", "email": "not-an-address"}, "email"),
        ({"username": "dana", "password": "123"}, "password"),
    ],
)
def test_bad_user_input_is_a_400_naming_the_field(admin, payload, field, audit_mark):
    mark = audit_mark()
    response = admin.post(f"{API}/users/", payload, format="json")
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM_JSON
    assert field in response.json()["errors"]
    assert not User.objects.filter(username="dana").exists()
    assert mark.new() == []


def test_a_duplicate_username_is_a_409(admin, world):
    response = admin.post(f"{API}/users/", {"username": "alice"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"


def test_an_unknown_user_is_a_404(admin, auditor):
    assert admin.get(f"{API}/users/ghost/").status_code == 404
    assert auditor.get(f"{API}/users/ghost/").status_code == 404
    assert admin.patch(f"{API}/users/ghost/", {"email": "g@example.test"}, format="json").status_code == 404


def test_an_admin_edits_names_and_email_with_before_and_after_in_the_trail(admin, world, audit_mark):
    mark = audit_mark()
    # when
    response = admin.patch(
        f"{API}/users/alice/",
        {"first_name": "Alice", "last_name": "Liddell", "email": "al@example.test"},
        format="json",
    )
    # then
    assert response.status_code == 200
    assert response.json()["display_name"] == "Alice Liddell"
    (event,) = mark.new()
    assert event.action == "user.updated"
    assert event.before == {"first_name": "", "last_name": "", "email": "alice@example.test"}
    assert event.after == {"first_name": "Alice", "last_name": "Liddell", "email": "al@example.test"}


def test_an_edit_that_changes_nothing_writes_nothing(admin, world, audit_mark):
    mark = audit_mark()
    assert admin.patch(f"{API}/users/alice/", {"email": "alice@example.test"}, format="json").status_code == 200
    assert mark.new() == []


@pytest.mark.parametrize(
    ("payload", "field"),
    [({"username": "alicia"}, "username"), ({"is_superuser": True}, "is_superuser"), ({"email": "nope"}, "email")],
)
def test_a_username_and_other_fields_cannot_be_patched(admin, world, payload, field):
    response = admin.patch(f"{API}/users/alice/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    alice = User.objects.get(pk=world["alice"].pk)
    assert (alice.username, alice.is_superuser, alice.email) == ("alice", False, "alice@example.test")


def test_deactivating_a_person_revokes_their_tokens_and_cuts_off_their_access(
    admin, api_client_for, world, system, audit_mark
):
    # given: alice's own token, and her CI account's token, both working
    alice_client = api_client_for(world["alice"], scopes=["read"])
    ci_client = api_client_for(world["account"], scopes=["read"])
    session = APIClient()
    session.force_login(world["alice"])
    for client in (alice_client, ci_client, session):
        assert client.get(f"{API}/tokens/").status_code == 200
    mark = audit_mark()
    # when
    response = admin.patch(f"{API}/users/alice/", {"is_active": False}, format="json")
    # then: she is inactive, her token is revoked, and nothing of hers authenticates any more
    assert response.status_code == 200
    assert response.json()["is_active"] is False
    assert not ApiToken.objects.active().filter(user=world["alice"]).exists()
    for client in (alice_client, ci_client):
        refused = client.get(f"{API}/tokens/")
        assert refused.status_code == 401
        assert refused["Content-Type"] == PROBLEM_JSON
    assert session.get(f"{API}/tokens/").status_code == 401
    # and the trail says what happened, token by token
    events = mark.new(outcome="success")
    assert [e.action for e in events] == ["api_token.revoked", "user.deactivated"]
    assert events[0].reason == "its owner was deactivated"
    assert events[1].before == {"is_active": True}
    assert events[1].after == {"is_active": False, "revoked_api_keys": 1}


def test_reactivating_a_person_does_not_bring_back_revoked_tokens(admin, api_client_for, world, audit_mark):
    alice_client = api_client_for(world["alice"], scopes=["read"])
    admin.patch(f"{API}/users/alice/", {"is_active": False}, format="json")
    mark = audit_mark()
    # when
    response = admin.patch(f"{API}/users/alice/", {"is_active": True}, format="json")
    # then
    assert response.json()["is_active"] is True
    assert mark.actions() == ["user.reactivated"]
    assert alice_client.get(f"{API}/tokens/").status_code == 401
    assert api_client_for(world["alice"], scopes=["read"]).get(f"{API}/tokens/").status_code == 200


def test_nobody_can_deactivate_themselves(admin, admin_user, audit_mark):
    mark = audit_mark()
    response = admin.patch(f"{API}/users/root/", {"is_active": False}, format="json")
    assert response.status_code == 400
    assert "is_active" in response.json()["errors"]
    admin_user.refresh_from_db()
    assert admin_user.is_active
    assert mark.new() == []
    assert admin.get(f"{API}/users/").status_code == 200


def test_an_admin_cannot_deactivate_themselves_through_their_own_service_account(api_client_for, admin_user, system):
    account = ServiceAccountFactory(name="ci-root", owner=admin_user)
    rbac.role_grant(actor=system, subject=account, role="admin")
    response = api_client_for(account).patch(f"{API}/users/root/", {"is_active": False}, format="json")
    assert response.status_code == 400
    admin_user.refresh_from_db()
    assert admin_user.is_active


# ---- teams and members ----------------------------------------------------------------------


def test_an_admin_creates_a_team(admin, audit_mark):
    mark = audit_mark()
    response = admin.post(
        f"{API}/teams/", {"name": "fraud", "display_name": "Fraud", "description": "Fraud models"}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["name"], body["display_name"], body["members"]) == ("fraud", "Fraud", [])
    assert response["Location"].endswith("/api/v1/teams/fraud/")
    (event,) = mark.new()
    assert (event.action, event.target_name, event.after) == (
        "team.created",
        "fraud",
        {"name": "fraud", "display_name": "Fraud"},
    )


def test_a_duplicate_team_is_a_409_and_a_bad_name_a_400(admin, world):
    assert admin.post(f"{API}/teams/", {"name": "credit"}, format="json").status_code == 409
    response = admin.post(f"{API}/teams/", {"name": "Credit Risk!"}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()["errors"]


def test_a_team_shows_its_members(auditor, world, make_user, team):
    make_user(username="bob", member_of=[team])
    body = auditor.get(f"{API}/teams/credit/").json()
    assert body["members"] == ["alice", "bob"]
    assert auditor.get(f"{API}/teams/nope/").status_code == 404


def test_adding_a_member_gives_them_the_teams_roles(admin, api_client_for, make_user, world, system, audit_mark):
    # given: the team "credit" is a viewer of its own models; bob is not yet a member
    model = RegisteredModelFactory(name="credit-scoring", owner_team=world["team"])
    rbac.role_grant(actor=system, subject=world["team"], role="viewer", team=world["team"])
    bob = make_user(username="bob")
    bob_client = api_client_for(bob, scopes=["read"])
    assert bob_client.get(f"{API}/models/{model.name}/").status_code == 404
    mark = audit_mark()
    # when
    response = admin.post(f"{API}/teams/credit/members/", {"username": "bob"}, format="json")
    # then
    assert response.status_code == 201
    assert response.json()["members"] == ["alice", "bob"]
    (event,) = mark.new()
    assert (event.action, event.target_name, event.related_id, event.after) == (
        "team.member_added",
        "credit",
        str(bob.pk),
        {"user": "bob"},
    )
    assert bob_client.get(f"{API}/models/{model.name}/").status_code == 200


def test_adding_a_member_twice_is_a_409(admin, world, audit_mark):
    mark = audit_mark()
    response = admin.post(f"{API}/teams/credit/members/", {"username": "alice"}, format="json")
    assert response.status_code == 409
    assert mark.new() == []


def test_adding_an_unknown_person_is_a_400_and_to_an_unknown_team_a_404(admin, world):
    response = admin.post(f"{API}/teams/credit/members/", {"username": "ghost"}, format="json")
    assert response.status_code == 400
    assert "username" in response.json()["errors"]
    assert admin.post(f"{API}/teams/credit/members/", {}, format="json").status_code == 400
    assert admin.post(f"{API}/teams/nope/members/", {"username": "alice"}, format="json").status_code == 404


def test_removing_a_member_takes_the_teams_roles_away(admin, api_client_for, world, system, audit_mark):
    # given: alice reads credit's model through her team's binding only
    model = RegisteredModelFactory(name="credit-scoring", owner_team=world["team"])
    RoleBinding.objects.filter(pk=world["binding"].pk).delete()
    rbac.role_grant(actor=system, subject=world["team"], role="viewer", team=world["team"])
    alice_client = api_client_for(world["alice"], scopes=["read"])
    assert alice_client.get(f"{API}/models/{model.name}/").status_code == 200
    mark = audit_mark()
    # when
    response = admin.delete(f"{API}/teams/credit/members/alice/")
    # then
    assert response.status_code == 204
    assert not TeamMembership.objects.filter(user=world["alice"]).exists()
    (event,) = mark.new()
    assert (event.action, event.before, event.related_id) == (
        "team.member_removed",
        {"user": "alice"},
        str(world["alice"].pk),
    )
    assert alice_client.get(f"{API}/models/{model.name}/").status_code == 404


def test_removing_someone_who_is_not_a_member_is_a_404(admin, world, make_user):
    make_user(username="bob")
    assert admin.delete(f"{API}/teams/credit/members/bob/").status_code == 404
    assert admin.delete(f"{API}/teams/credit/members/ghost/").status_code == 404
    assert admin.delete(f"{API}/teams/nope/members/alice/").status_code == 404


# ---- service accounts -----------------------------------------------------------------------


def test_service_accounts_are_listed_with_their_owner(auditor, world):
    body = auditor.get(f"{API}/service-accounts/").json()
    assert body["results"] == [
        {
            "name": "ci-credit",
            "description": "",
            "owner": "alice",
            "team": "credit",
            "is_active": True,
            "created_at": body["results"][0]["created_at"],
        }
    ]
    assert auditor.get(f"{API}/service-accounts/?owner=root").json()["count"] == 0


def test_an_admin_creates_a_service_account_owned_by_a_person(admin, world, audit_mark):
    mark = audit_mark()
    response = admin.post(
        f"{API}/service-accounts/",
        {"name": "ci-fraud", "owner": "alice", "team": "credit", "description": "GitHub Actions"},
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["owner"] == "alice"
    account = ServiceAccount.objects.get(name="ci-fraud")
    assert account.owner == world["alice"] and account.team == world["team"]
    (event,) = mark.new()
    assert (event.action, event.related_id, event.after) == (
        "service_account.created",
        str(world["alice"].pk),
        {"name": "ci-fraud", "owner": "alice", "team": "credit"},
    )


@pytest.mark.parametrize(
    ("payload", "field", "status"),
    [
        ({"name": "ci-x"}, "owner", 400),
        ({"name": "ci-x", "owner": "ghost"}, "owner", 400),
        ({"name": "ci-x", "owner": "zed"}, "owner", 400),  # deactivated
        ({"name": "ci-x", "owner": "alice", "team": "nope"}, "team", 400),
        ({"name": "not a slug", "owner": "alice"}, "name", 400),
        ({"name": "ci-credit", "owner": "alice"}, None, 409),
    ],
)
def test_bad_service_account_requests(admin, world, make_user, payload, field, status):
    zed = make_user(username="zed")
    User.objects.filter(pk=zed.pk).update(is_active=False)
    response = admin.post(f"{API}/service-accounts/", payload, format="json")
    assert response.status_code == status, response.content
    if field:
        assert field in response.json()["errors"]
    assert not ServiceAccount.objects.filter(name="ci-x").exists()


# ---- role bindings --------------------------------------------------------------------------


def test_role_bindings_are_listed_with_subject_and_scope(auditor, world, system):
    model = RegisteredModelFactory(name="credit-scoring", owner_team=world["team"])
    rbac.role_grant(actor=system, subject=world["account"], role="viewer", model=model)
    rbac.role_grant(actor=system, subject=world["team"], role="reviewer")
    rows = [
        (r["subject_type"], r["subject"], r["role"], r["scope_type"], r["scope_team"], r["scope_model"])
        for r in auditor.get(f"{API}/role-bindings/?page_size=100").json()["results"]
    ]
    assert ("user", "alice", "contributor", "team", "credit", None) in rows
    assert ("service_account", "ci-credit", "viewer", "model", None, "credit-scoring") in rows
    assert ("team", "credit", "reviewer", "global", None, None) in rows


def test_role_bindings_filter_by_subject_and_role(auditor, world, system):
    rbac.role_grant(actor=system, subject=world["team"], role="viewer")
    assert [r["subject"] for r in auditor.get(f"{API}/role-bindings/?user=alice").json()["results"]] == ["alice"]
    assert [r["role"] for r in auditor.get(f"{API}/role-bindings/?team=credit").json()["results"]] == ["viewer"]
    assert [r["subject"] for r in auditor.get(f"{API}/role-bindings/?role=contributor").json()["results"]] == ["alice"]
    assert auditor.get(f"{API}/role-bindings/?service_account=ci-credit").json()["count"] == 0
    response = auditor.get(f"{API}/role-bindings/?role=overlord")
    assert response.status_code == 400
    assert "role" in response.json()["errors"]


def test_a_granted_role_takes_effect_and_a_revoked_one_stops(admin, admin_user, api_client_for, make_user, audit_mark):
    # given: a contributor on another team cannot see the fraud team's model
    model = RegisteredModelFactory(name="fraud-detector", owner_team=TeamFactory(name="fraud"))
    carl = make_user("contributor", username="carl", team=TeamFactory(name="other"))
    carl_client = api_client_for(carl, scopes=["read"])
    assert carl_client.get(f"{API}/models/fraud-detector/").status_code == 404
    mark = audit_mark()
    # when: an admin grants him viewer on that one model
    response = admin.post(
        f"{API}/role-bindings/",
        {"subject_type": "user", "subject": "carl", "role": "viewer", "scope_model": "fraud-detector"},
        format="json",
    )
    # then: the binding exists, is audited, and he can read the model
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["subject"], body["role"], body["scope_type"], body["scope_model"], body["granted_by"]) == (
        "carl",
        "viewer",
        "model",
        "fraud-detector",
        "root",
    )
    assert response["Location"] == body["url"]
    (event,) = mark.new()
    assert (event.action, event.outcome, event.actor_id, event.target_id) == (
        "role_binding.created",
        "success",
        str(admin_user.pk),
        str(body["id"]),
    )
    assert event.after == {"subject": "user carl", "role": "viewer", "scope": f"model {model}"}
    assert carl_client.get(f"{API}/models/fraud-detector/").status_code == 200

    # when: the admin revokes it
    mark = audit_mark()
    assert admin.delete(f"{API}/role-bindings/{body['id']}/").status_code == 204
    # then: it is gone, audited with what it was, and the model is out of his reach again
    assert not RoleBinding.objects.filter(pk=body["id"]).exists()
    (event,) = mark.new()
    assert (event.action, event.target_id, event.before) == (
        "role_binding.deleted",
        str(body["id"]),
        {"subject": "user carl", "role": "viewer", "scope": f"model {model}"},
    )
    assert carl_client.get(f"{API}/models/fraud-detector/").status_code == 404
    assert admin.get(f"{API}/role-bindings/{body['id']}/").status_code == 404


def test_roles_are_granted_to_teams_and_service_accounts_on_a_team(admin, world):
    for subject_type, subject in (("team", "credit"), ("service_account", "ci-credit")):
        response = admin.post(
            f"{API}/role-bindings/",
            {"subject_type": subject_type, "subject": subject, "role": "viewer", "scope_team": "credit"},
            format="json",
        )
        assert response.status_code == 201, response.content
        assert (response.json()["scope_type"], response.json()["scope_team"]) == ("team", "credit")


def test_the_same_binding_twice_is_a_409_naming_the_existing_one(admin, world, audit_mark):
    mark = audit_mark()
    response = admin.post(
        f"{API}/role-bindings/",
        {"subject_type": "user", "subject": "alice", "role": "contributor", "scope_team": "credit"},
        format="json",
    )
    assert response.status_code == 409
    assert response.json()["existing_binding"] == world["binding"].pk
    assert RoleBinding.objects.filter(user=world["alice"]).count() == 1
    assert mark.new() == []


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({"subject_type": "user", "subject": "ghost", "role": "viewer"}, {"subject"}),
        ({"subject_type": "team", "subject": "ghost", "role": "viewer"}, {"subject"}),
        ({"subject_type": "service_account", "subject": "ghost", "role": "viewer"}, {"subject"}),
        ({"subject_type": "robot", "subject": "alice", "role": "viewer"}, {"subject_type"}),
        ({"subject_type": "user", "subject": "alice", "role": "overlord"}, {"role"}),
        ({"subject_type": "user", "subject": "alice", "role": "viewer", "scope_team": "nope"}, {"scope_team"}),
        ({"subject_type": "user", "subject": "alice", "role": "viewer", "scope_model": "nope"}, {"scope_model"}),
        (
            {"subject_type": "user", "subject": "alice", "role": "viewer", "scope_team": "credit", "scope_model": "m"},
            {"scope_team", "scope_model"},
        ),
        ({"subject_type": "user", "role": "viewer"}, {"subject"}),
    ],
)
def test_bad_grants_are_a_400_naming_the_field(admin, world, audit_mark, payload, fields):
    RegisteredModelFactory(name="m", owner_team=world["team"])
    mark = audit_mark()
    response = admin.post(f"{API}/role-bindings/", payload, format="json")
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == PROBLEM_JSON
    assert set(response.json()["errors"]) == fields
    assert RoleBinding.objects.count() == 2  # the world's binding and root's admin binding
    assert mark.new() == []


def test_revoking_an_unknown_binding_is_a_404(admin):
    assert admin.delete(f"{API}/role-bindings/999999/").status_code == 404


# ---- lists: pagination and query counts ----------------------------------------------------


@pytest.mark.parametrize("path", ["users/", "teams/", "service-accounts/", "role-bindings/"])
def test_list_query_counts_do_not_grow_with_the_page(admin, world, system, path, django_assert_max_num_queries):
    # given: 30 more of everything, each person in a team, each account and binding pointing somewhere
    admin.get(f"{API}/users/")  # the first use writes last_used_at; later reads within a minute do not
    for n in range(30):
        team = TeamFactory(name=f"team-{n:02d}")
        person = UserFactory(username=f"person-{n:02d}")
        accounts.team_member_add(actor=system, team=team, user=person)
        account = ServiceAccountFactory(name=f"ci-{n:02d}", owner=person, team=team)
        rbac.role_grant(actor=system, subject=account, role="viewer", team=team)
    # when / then: one count, one page, one prefetch at most, plus authentication and grants
    with django_assert_max_num_queries(5):
        response = admin.get(f"{API}/{path}?page_size=100")
    assert response.status_code == 200
    assert response.json()["count"] > 30
    assert len(response.json()["results"]) == response.json()["count"]


def test_lists_paginate(admin, world):
    for n in range(3):
        TeamFactory(name=f"extra-{n}")
    body = admin.get(f"{API}/teams/?page_size=2").json()
    assert body["count"] == 4
    assert len(body["results"]) == 2
    assert body["next"] and "page=2" in body["next"]


def test_the_admin_api_is_in_the_openapi_schema(anon_client):
    paths = anon_client.get(f"{API}/schema/?format=json").json()["paths"]
    for path in (
        "/api/v1/users/",
        "/api/v1/users/{username}/",
        "/api/v1/teams/",
        "/api/v1/teams/{name}/",
        "/api/v1/teams/{name}/members/",
        "/api/v1/teams/{name}/members/{username}/",
        "/api/v1/service-accounts/",
        "/api/v1/role-bindings/",
        "/api/v1/role-bindings/{binding_id}/",
    ):
        assert path in paths, path


# ---- helpers --------------------------------------------------------------------------------


def names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["username"] for row in response.json()["results"]]
