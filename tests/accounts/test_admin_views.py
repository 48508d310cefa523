"""The dashboard's Access page: admins and auditors see people, teams, service accounts and role bindings;
admins change them through its forms; everyone else gets the 403 page, and every refusal is audited."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.accounts import services as accounts
from apps.accounts.models import ApiToken, ServiceAccount, Team, TeamMembership, User
from apps.rbac import services as rbac
from apps.rbac.models import RoleBinding
from tests.factories.accounts import ServiceAccountFactory, TeamFactory, UserFactory
from tests.factories.registry import RegisteredModelFactory

pytestmark = pytest.mark.django_db

PAGE = "/access/"


@pytest.fixture
def world(make_user, system, team):
    """A team "credit" with alice, her CI account, and alice's binding as contributor on credit."""
    alice = make_user(username="alice", member_of=[team])
    account = ServiceAccountFactory(name="ci-credit", owner=alice, team=team)
    binding = rbac.role_grant(actor=system, subject=alice, role="contributor", team=team)
    return {"alice": alice, "account": account, "binding": binding, "team": team}


def signed_in(make_user, role: str | None, username: str, **kwargs) -> Client:
    client = Client()
    user = make_user(role, username=username, **kwargs)
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def admin(make_user):
    return signed_in(make_user, "admin", "root")


@pytest.fixture
def auditor(make_user):
    return signed_in(make_user, "auditor", "erin")


def posts(world) -> list[tuple[str, dict, str]]:
    """(path, form data, the audit action a refusal is recorded under), one per form and button."""
    return [
        ("/access/users/", {"user-username": "mallory"}, "user.created"),
        ("/access/users/alice/active/", {"is_active": "0"}, "user.deactivated"),
        ("/access/teams/", {"team-name": "shadow"}, "team.created"),
        ("/access/members/", {"member-team": "credit", "member-username": "erin"}, "team.member_added"),
        ("/access/teams/credit/members/alice/remove/", {}, "team.member_removed"),
        ("/access/service-accounts/", {"account-name": "ci-evil", "account-owner": "alice"}, "service_account.created"),
        (
            "/access/role-bindings/",
            {"grant-subject_type": "user", "grant-subject": "erin", "grant-role": "admin"},
            "role_binding.created",
        ),
        (f"/access/role-bindings/{world['binding'].pk}/revoke/", {}, "role_binding.deleted"),
    ]


def state() -> tuple:
    return (
        list(User.objects.order_by("pk").values_list("username", "is_active")),
        list(Team.objects.order_by("pk").values_list("name")),
        list(TeamMembership.objects.order_by("pk").values_list("team_id", "user_id")),
        list(ServiceAccount.objects.order_by("pk").values_list("name")),
        list(RoleBinding.objects.order_by("pk").values_list("pk", "role")),
    )


# ---- who may see the page -------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in_and_change_nothing(client, world):
    response = client.get(PAGE)
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    before = state()
    for path, data, _ in posts(world):
        assert client.post(path, data).status_code == 302, path
    assert state() == before


@pytest.mark.parametrize("role", [None, "viewer", "contributor", "compliance_officer"])
def test_anyone_else_gets_the_403_page_and_no_nav_link(make_user, team, world, audit_mark, role):
    client = signed_in(make_user, role, "vic", team=team if role else None)
    assert b'href="/access/"' not in client.get("/").content
    mark = audit_mark()
    response = client.get(PAGE)
    assert response.status_code == 403
    assert b"alice" not in response.content
    assert [(e.action, e.outcome, e.source) for e in mark.new()] == [("accounts.denied", "denied", "web")]


@pytest.mark.parametrize("role", [None, "contributor"])
def test_anyone_else_cannot_post_any_form(make_user, team, world, audit_mark, role):
    client = signed_in(make_user, role, "vic", team=team if role else None)
    before = state()
    for path, data, action in posts(world):
        mark = audit_mark()
        response = client.post(path, data)
        assert response.status_code == 403, path
        assert [(e.action, e.outcome) for e in mark.new()] == [(action, "denied")], path
    assert state() == before


def test_an_auditor_sees_every_table_but_no_forms(auditor, world, system):
    model = RegisteredModelFactory(name="credit-scoring", owner_team=world["team"])
    rbac.role_grant(actor=system, subject=world["account"], role="viewer", model=model)
    # when
    response = auditor.get(PAGE)
    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert 'href="/access/"' in html  # the nav link
    for table in ("user-table", "team-table", "service-account-table", "role-binding-table"):
        assert f'id="{table}"' in html
    assert row(html, "team-table", "credit") and "alice" in row(html, "team-table", "credit")
    assert "alice" in row(html, "service-account-table", "ci-credit")
    assert "model" in row(html, "role-binding-table", "ci-credit") and "credit-scoring" in html
    assert "only admins change it" in html
    assert "<form" not in html.split('id="users"')[1]  # no create forms, no buttons
    assert "Revoke" not in html and "Deactivate" not in html


def test_an_auditor_cannot_post_any_form_and_each_attempt_is_audited(auditor, world, audit_mark):
    before = state()
    for path, data, action in posts(world):
        mark = audit_mark()
        response = auditor.post(path, data)
        assert response.status_code == 403, path
        assert [(e.action, e.outcome, e.actor_name) for e in mark.new()] == [(action, "denied", "erin")], path
    assert state() == before


def test_an_auditor_posting_an_invalid_form_is_refused_too(auditor, audit_mark):
    mark = audit_mark()
    assert auditor.post("/access/users/", {"user-username": ""}).status_code == 403
    assert [(e.action, e.outcome) for e in mark.new()] == [("user.created", "denied")]


def test_an_admin_sees_the_forms_with_csrf_tokens(admin, world):
    html = admin.get(PAGE).content.decode()
    for form in (
        "user-create-form",
        "team-create-form",
        "member-add-form",
        "service-account-create-form",
        "role-grant-form",
    ):
        assert f'id="{form}"' in html
    assert html.count("csrfmiddlewaretoken") >= 5
    assert "Deactivate" in row(html, "user-table", "alice")
    assert "Deactivate" not in row(html, "user-table", "root")  # not themselves


def test_forms_need_the_csrf_token(make_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("admin", username="root"))
    assert client.post("/access/teams/", {"name": "forged"}).status_code == 403
    assert not Team.objects.filter(name="forged").exists()


def test_the_page_query_count_does_not_grow_with_the_rows(admin, world, system, django_assert_max_num_queries):
    for n in range(30):
        team = TeamFactory(name=f"team-{n:02d}")
        person = UserFactory(username=f"person-{n:02d}")
        accounts.team_member_add(actor=system, team=team, user=person)
        account = ServiceAccountFactory(name=f"ci-{n:02d}", owner=person, team=team)
        rbac.role_grant(actor=system, subject=account, role="viewer", team=team)
    # session, user, grants; four counts, four pages, two prefetches; the team names of the forms; and the
    # two of the admins' degraded banner (worker heartbeats, oldest queued job: tests/jobs/test_health_workers.py)
    with django_assert_max_num_queries(16):
        response = admin.get(PAGE)
    assert response.status_code == 200
    assert response.content.decode().count("person-29") >= 3  # user row, team member, owner


def test_each_table_pages_on_its_own(admin, system):
    for n in range(55):
        TeamFactory(name=f"team-{n:02d}")
    html = admin.get(PAGE, {"teams_page": "2"}).content.decode()
    teams = section(html, "team-table")
    assert "team-54" in teams and "team-00" not in teams
    assert 'href="?teams_page=1#teams"' in html


# ---- admins change things -------------------------------------------------------------------


def test_an_admin_creates_a_user(admin, audit_mark):
    mark = audit_mark()
    response = admin.post(
        "/access/users/",
        {"user-username": "dana", "user-email": "dana@example.test", "user-password": "a-long-Passphrase-42"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == "/access/"
    assert "User “dana” created." in response.content.decode()
    assert User.objects.get(username="dana").check_password("a-long-Passphrase-42")
    assert mark.actions() == ["user.created"]


def test_errors_are_shown_next_to_the_form(admin, world, audit_mark):
    mark = audit_mark()
    # a weak password (the service's rule), a duplicate (a conflict), a bad name (the form's shape)
    weak = admin.post("/access/users/", {"user-username": "dana", "user-password": "123"}).content.decode()
    assert "This password is too short" in section(weak, "user-create-form")
    assert 'href="#user-create-form">Create a user</a> below needs correcting' in weak
    duplicate = admin.post("/access/users/", {"user-username": "alice"}).content.decode()
    assert "A user named &#x27;alice&#x27; already exists." in section(duplicate, "user-create-form")
    bad = admin.post("/access/teams/", {"team-name": "Not A Slug!"}).content.decode()
    assert "errorlist" in section(bad, "team-create-form")
    assert 'value="Not A Slug!"' in bad  # what was typed is kept
    assert not User.objects.filter(username="dana").exists()
    assert mark.new() == []


def test_an_admin_creates_a_team_and_adds_and_removes_a_member(admin, world, make_user, audit_mark):
    make_user(username="bob")
    mark = audit_mark()
    # create
    response = admin.post("/access/teams/", {"team-name": "fraud", "team-display_name": "Fraud"}, follow=True)
    assert "Team “fraud” created." in response.content.decode()
    # add
    response = admin.post("/access/members/", {"member-team": "fraud", "member-username": "bob"}, follow=True)
    assert "“bob” is now a member of team “fraud”." in response.content.decode()
    assert "bob" in row(response.content.decode(), "team-table", "Fraud")
    # add again: shown inline
    again = admin.post("/access/members/", {"member-team": "fraud", "member-username": "bob"}).content.decode()
    assert "already a member" in section(again, "member-add-form")
    # unknown person: shown on the field
    ghost = admin.post("/access/members/", {"member-team": "fraud", "member-username": "ghost"}).content.decode()
    assert "No user named &#x27;ghost&#x27;." in section(ghost, "member-add-form")
    # a team typed that does not exist is refused next to the form, naming it
    typo = admin.post("/access/members/", {"member-team": "frod", "member-username": "bob"}).content.decode()
    assert "No team named &#x27;frod&#x27;." in section(typo, "member-add-form")
    # remove
    response = admin.post("/access/teams/fraud/members/bob/remove/", follow=True)
    assert "“bob” is no longer a member of team “fraud”." in response.content.decode()
    assert not TeamMembership.objects.filter(team__name="fraud").exists()
    assert mark.actions() == ["team.created", "team.member_added", "team.member_removed"]


def test_an_admin_creates_a_service_account_with_an_owner(admin, world, audit_mark):
    mark = audit_mark()
    missing = admin.post("/access/service-accounts/", {"account-name": "ci-x"}).content.decode()
    assert "This field is required." in section(missing, "service-account-create-form")
    unknown = admin.post("/access/service-accounts/", {"account-name": "ci-x", "account-owner": "ghost"})
    assert "No user named &#x27;ghost&#x27;." in section(unknown.content.decode(), "service-account-create-form")
    response = admin.post(
        "/access/service-accounts/",
        {"account-name": "ci-fraud", "account-owner": "alice", "account-team": "credit"},
        follow=True,
    )
    assert "Service account “ci-fraud” created, owned by “alice”." in response.content.decode()
    assert ServiceAccount.objects.get(name="ci-fraud").owner == world["alice"]
    assert mark.actions() == ["service_account.created"]


def test_a_role_granted_on_the_page_takes_effect_and_revoking_it_removes_it(
    admin, make_user, api_client_for, audit_mark
):
    # given: a contributor elsewhere who cannot see the fraud model
    RegisteredModelFactory(name="fraud-detector", owner_team=TeamFactory(name="fraud"))
    carl = make_user("contributor", username="carl", team=TeamFactory(name="other"))
    carl_api = api_client_for(carl, scopes=["read"])
    assert carl_api.get("/api/v1/models/fraud-detector/").status_code == 404
    mark = audit_mark()
    # when: granted viewer on the model
    response = admin.post(
        "/access/role-bindings/",
        {
            "grant-subject_type": "user",
            "grant-subject": "carl",
            "grant-role": "viewer",
            "grant-scope_model": "fraud-detector",
        },
        follow=True,
    )
    # then
    assert "Granted: user carl is Viewer on model fraud-detector." in response.content.decode()
    assert carl_api.get("/api/v1/models/fraud-detector/").status_code == 200
    binding = RoleBinding.objects.get(user=carl, role="viewer")
    # and granting it again is shown inline, not duplicated
    again = admin.post(
        "/access/role-bindings/",
        {
            "grant-subject_type": "user",
            "grant-subject": "carl",
            "grant-role": "viewer",
            "grant-scope_model": "fraud-detector",
        },
    ).content.decode()
    assert "This binding exists already" in section(again, "role-grant-form")
    # when: revoked
    response = admin.post(f"/access/role-bindings/{binding.pk}/revoke/", follow=True)
    assert "Revoked: user carl is Viewer on model fraud-detector." in response.content.decode()
    assert carl_api.get("/api/v1/models/fraud-detector/").status_code == 404
    assert mark.actions(outcome="success") == ["role_binding.created", "role_binding.deleted"]


def test_a_grant_with_both_scopes_or_an_unknown_name_is_shown_inline(admin, world):
    both = admin.post(
        "/access/role-bindings/",
        {
            "grant-subject_type": "user",
            "grant-subject": "alice",
            "grant-role": "viewer",
            "grant-scope_team": "credit",
            "grant-scope_model": "x",
        },
    ).content.decode()
    assert "not both" in section(both, "role-grant-form")
    unknown = admin.post(
        "/access/role-bindings/", {"grant-subject_type": "team", "grant-subject": "ghosts", "grant-role": "viewer"}
    ).content.decode()
    assert "No team named &#x27;ghosts&#x27;." in section(unknown, "role-grant-form")
    assert RoleBinding.objects.filter(user=world["alice"]).count() == 1


def test_deactivating_a_person_ends_their_session_and_their_tokens(admin, world, make_user, api_client_for, audit_mark):
    # given: alice signed in to the dashboard and holding a token
    alice_web = Client()
    alice_web.force_login(world["alice"])
    assert alice_web.get("/").status_code == 200
    alice_api = api_client_for(world["alice"], scopes=["read"])
    mark = audit_mark()
    # when
    response = admin.post("/access/users/alice/active/", {"is_active": "0"}, follow=True)
    # then
    assert "is deactivated" in response.content.decode()
    assert "Reactivate" in row(response.content.decode(), "user-table", "alice")
    assert alice_web.get("/").status_code == 302  # back to the sign-in page
    assert alice_api.get("/api/v1/tokens/").status_code == 401
    assert not ApiToken.objects.active().filter(user=world["alice"]).exists()
    assert mark.actions(outcome="success") == ["api_token.revoked", "user.deactivated"]
    # and reactivating lets her sign in again (with a new session)
    admin.post("/access/users/alice/active/", {"is_active": "1"})
    assert User.objects.get(username="alice").is_active
    assert APIClient().login(username="alice", password="correct horse battery staple")


def test_an_admin_cannot_deactivate_themselves(admin, audit_mark):
    mark = audit_mark()
    response = admin.post("/access/users/root/active/", {"is_active": "0"}, follow=True)
    assert "You cannot deactivate yourself" in response.content.decode()
    assert User.objects.get(username="root").is_active
    assert mark.new() == []


# ---- helpers --------------------------------------------------------------------------------


def section(html: str, element_id: str) -> str:
    """The HTML of the form (or table) with this id."""
    start = html.index(f'id="{element_id}"')
    end = html.index("</form>" if "form" in element_id else "</table>", start)
    return html[start:end]


def row(html: str, table_id: str, text: str) -> str:
    """The table row of ``table_id`` that contains ``text``."""
    for found in re.findall(r"<tr>.*?</tr>", section(html, table_id), flags=re.S):
        if text in found:
            return found
    return ""
