"""Operator commands: they change state through the services, audited as the system with source ``cli``."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken, ServiceAccount, Team, User
from apps.accounts.principals import principal_for_service_account, principal_for_user
from apps.rbac import services as rbac
from apps.rbac.models import RoleBinding
from tests.factories.registry import RegisteredModelFactory

PASSWORD = "a long enough passphrase 42"


def run(*args, stdin: str | None = None) -> str:
    out = io.StringIO()
    options = {"stdout": out, "stderr": io.StringIO()}
    if stdin is not None:
        options["stdin"] = io.StringIO(stdin)
    call_command(*args, **options)
    return out.getvalue()


def assert_cli_events(events, actions: list[str]) -> None:
    assert [e.action for e in events] == actions
    for event in events:
        assert (event.actor_type, event.actor_name, event.source) == ("system", "cli", "cli")


@pytest.mark.django_db
def test_user_create_with_password_on_stdin_and_admin(audit_mark, client):
    mark = audit_mark()
    # when
    out = run(
        "user_create", "alice", "--email", "alice@example.test", "--password-stdin", "--admin", stdin=PASSWORD + "\n"
    )
    # then: the person exists, can sign in, and is a global admin
    user = User.objects.get(username="alice")
    assert user.email == "alice@example.test"
    assert user.check_password(PASSWORD)
    assert "alice" in out
    assert rbac.has_global(principal_for_user(user), "accounts.manage")
    assert client.post("/login/", {"username": "alice", "password": PASSWORD}).status_code == 302
    # and the trail names the operator command, never the password
    events = mark.new(actor_type="system")
    assert_cli_events(events, ["user.created", "role_binding.created"])
    assert PASSWORD not in str(events[0].after)


@pytest.mark.django_db
def test_user_create_with_password_option_and_without_password():
    run("user_create", "bob", "--password", PASSWORD)
    assert User.objects.get(username="bob").check_password(PASSWORD)
    out = run("user_create", "carol", stdin="")
    assert not User.objects.get(username="carol").has_usable_password()
    assert "cannot sign in yet" in out


@pytest.mark.django_db
def test_user_create_refuses_a_weak_password_and_a_duplicate():
    with pytest.raises(CommandError, match="too short|too common"):
        run("user_create", "dave", "--password", "secret")
    assert not User.objects.filter(username="dave").exists()
    run("user_create", "erin", "--password", PASSWORD)
    with pytest.raises(CommandError, match="already exists"):
        run("user_create", "erin", "--password", PASSWORD)


@pytest.mark.django_db
def test_team_create_and_add_member(audit_mark, make_user):
    user = make_user(username="alice")
    mark = audit_mark()
    run("team_create", "credit-risk", "--display-name", "Credit risk")
    run("team_add_member", "credit-risk", "alice")
    team = Team.objects.get(name="credit-risk")
    assert list(team.members.all()) == [user]
    assert_cli_events(mark.new(), ["team.created", "team.member_added"])
    with pytest.raises(CommandError, match="No team named 'nope'"):
        run("team_add_member", "nope", "alice")
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        run("team_add_member", "credit-risk", "ghost")


@pytest.mark.django_db
def test_service_account_create(audit_mark, make_user, team):
    owner = make_user(username="alice")
    mark = audit_mark()
    run("service_account_create", "ci-credit", "--owner", "alice", "--team", team.name)
    account = ServiceAccount.objects.get(name="ci-credit")
    assert account.owner == owner and account.team == team
    assert_cli_events(mark.new(), ["service_account.created"])
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        run("service_account_create", "ci-other", "--owner", "ghost")


@pytest.mark.django_db
def test_role_grant_to_a_user_globally_on_a_team_and_on_a_model(audit_mark, make_user, team):
    user = make_user(username="alice")
    model = RegisteredModelFactory(name="credit-scoring", owner_team=team)
    mark = audit_mark()
    # when
    run("role_grant", "--user", "alice", "--role", "auditor")
    run("role_grant", "--user", "alice", "--role", "contributor", "--team", team.name)  # --team is the scope here
    run("role_grant", "--user", "alice", "--role", "reviewer", "--model", "credit-scoring")
    # then
    bindings = {(b.role, b.scope_type) for b in RoleBinding.objects.filter(user=user)}
    assert bindings == {("auditor", "global"), ("contributor", "team"), ("reviewer", "model")}
    actor = principal_for_user(user)
    assert rbac.allows(actor, "registry.version_create", model)
    assert_cli_events(mark.new(), ["role_binding.created"] * 3)


@pytest.mark.django_db
def test_role_grant_to_a_team_and_to_a_service_account(make_user, team, other_team):
    member = make_user(username="alice", member_of=[team])
    model = RegisteredModelFactory(owner_team=team)
    other_model = RegisteredModelFactory(owner_team=other_team)
    run("service_account_create", "ci-credit", "--owner", "alice")
    # --team alone is the subject; --team-scope names the scope
    run("role_grant", "--team", team.name, "--role", "viewer", "--team-scope", team.name)
    run("role_grant", "--service-account", "ci-credit", "--role", "contributor", "--team", team.name)
    assert rbac.allows(principal_for_user(member), "registry.view", model)
    assert not rbac.allows(principal_for_user(member), "registry.view", other_model)
    account = ServiceAccount.objects.get(name="ci-credit")
    assert rbac.allows(principal_for_service_account(account), "registry.version_create", model)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "alice", "--role", "overlord"], "Unknown role 'overlord'"),
        (["--user", "ghost", "--role", "viewer"], "No user named 'ghost'"),
        (["--service-account", "ghost", "--role", "viewer"], "No service account named 'ghost'"),
        (["--team", "ghost", "--role", "viewer"], "No team named 'ghost'"),
        (["--user", "alice", "--role", "viewer", "--model", "ghost"], "No model named 'ghost'"),
        (["--role", "viewer"], "Give a subject"),
        (["--user", "alice", "--role", "viewer", "--team", "credit", "--model", "x"], "not both"),
    ],
)
def test_role_grant_errors_are_clear(make_user, team, args, message):
    make_user(username="alice")
    with pytest.raises(CommandError, match=message):
        run("role_grant", *args)
    assert not RoleBinding.objects.exists()


@pytest.mark.django_db
def test_token_create_prints_a_working_token_as_the_last_line(audit_mark, make_user):
    # given: a viewer
    make_user("viewer", username="alice")
    mark = audit_mark()
    # when
    out = run(
        "token_create", "--user", "alice", "--name", "laptop", "--scopes", "read,audit:read", "--expires-in-days", "7"
    )
    # then: the last line is the token, and it authenticates against the API
    last = out.strip().splitlines()[-1]
    assert last.startswith("assay_")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {last}")
    response = client.get("/api/v1/tokens/")
    assert response.status_code == 200
    assert response.json()["results"][0]["scopes"] == ["audit:read", "read"]
    assert_cli_events(mark.new(actor_type="system"), ["api_token.created"])


@pytest.mark.django_db
def test_token_create_for_a_service_account(make_user):
    make_user(username="alice")
    run("service_account_create", "ci-credit", "--owner", "alice")
    out = run("token_create", "--service-account", "ci-credit", "--scopes", "read,registry:write")
    last = out.strip().splitlines()[-1]
    token = ApiToken.objects.get(service_account__name="ci-credit")
    assert last.startswith(token.prefix + "_")
    assert token.scopes == ["read", "registry:write"]


@pytest.mark.django_db
def test_token_create_errors_are_clear(make_user):
    make_user(username="alice")
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        run("token_create", "--user", "ghost")
    with pytest.raises(CommandError, match="Unknown scope"):
        run("token_create", "--user", "alice", "--scopes", "read,root")
    with pytest.raises(CommandError, match="A token lasts at least 1 day"):
        run("token_create", "--user", "alice", "--expires-in-days", "0")
    assert not ApiToken.objects.exists()
