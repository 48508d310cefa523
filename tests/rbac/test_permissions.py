"""The role matrix: what each role may read and write, at each scope, on its own team's model and another's.

The expectations below are written out by hand from the issue's role table, not
derived from ``apps.rbac.roles``, so a change to the policy has to change this file too.
"""

from __future__ import annotations

import pytest

from apps.accounts import services as accounts
from apps.accounts.principals import principal_for_service_account, principal_for_token, principal_for_user
from apps.core.errors import Denied
from apps.core.principals import Principal, PrincipalKind, same_person
from apps.rbac import services as rbac
from apps.registry import selectors as registry
from apps.registry.models import RegisteredModel
from tests.factories.accounts import ServiceAccountFactory
from tests.factories.registry import RegisteredModelFactory

# What each role may do wherever its binding applies.
CAN = {
    "viewer": {"read"},
    "contributor": {"read", "write", "download"},
    "reviewer": {"read", "approve", "download"},
    "compliance_officer": {"read", "approve", "audit", "policies", "download"},
    "release_manager": {"read", "deploy"},
    "auditor": {"read", "audit", "download"},
    "admin": {"read", "write", "approve", "deploy", "audit", "policies", "accounts", "download"},
}
PERMISSION = {
    "read": "registry.view",
    "write": "registry.version_create",
    "approve": "releases.approve",
    "deploy": "releases.deploy",
    "download": "registry.download",
}
# Trail-wide powers: only a global binding gives them, whatever the role.
GLOBAL_ONLY = {"audit": "audit.view", "policies": "policies.manage", "accounts": "accounts.manage"}
ALL_SCOPES = ["read", "registry:write", "evidence:write", "releases:write", "policies:write", "audit:read", "admin"]


@pytest.fixture
def models(team, other_team):
    """A model of the user's team ("credit") and one of another team ("marketing")."""
    return (
        RegisteredModelFactory(name="credit-scoring", owner_team=team),
        RegisteredModelFactory(name="campaign-uplift", owner_team=other_team),
    )


@pytest.mark.django_db
@pytest.mark.parametrize("scope", ["global", "team", "model"])
@pytest.mark.parametrize("role", list(CAN))
def test_role_matrix(make_user, team, models, role, scope):
    # given: a user holding ``role`` globally, on the "credit" team, or on the credit model only
    own_model, other_model = models
    user = make_user(
        role, team=team if scope == "team" else None, model=own_model if scope == "model" else None, member_of=[team]
    )
    actor = principal_for_user(user)

    # then: on the team's model the role's powers apply; on another team's model only a global binding reaches
    for action, permission in PERMISSION.items():
        expected = action in CAN[role]
        assert rbac.allows(actor, permission, own_model) is expected, (role, scope, action, "own team")
        assert rbac.allows(actor, permission, other_model) is (expected and scope == "global"), (
            role,
            scope,
            action,
            "other team",
        )
    for power, permission in GLOBAL_ONLY.items():
        assert rbac.has_global(actor, permission) is (power in CAN[role] and scope == "global"), (role, scope, power)

    # and: the inventory lists exactly the models the role can read
    visible = set(registry.model_list(actor=actor).values_list("name", flat=True))
    assert visible == ({"credit-scoring", "campaign-uplift"} if scope == "global" else {"credit-scoring"})


@pytest.mark.django_db
def test_write_denied_on_a_visible_model_is_403_and_on_an_invisible_one_is_404(make_user, team, models):
    # given: a viewer of the credit team
    own_model, other_model = models
    actor = principal_for_user(make_user("viewer", team=team))
    # when / then: writing to a model they can see is forbidden (403) ...
    with pytest.raises(Denied) as seen:
        rbac.require(actor, "registry.version_create", own_model)
    assert seen.value.status_code == 403
    # ... and to one they cannot see reads as "not found" (404), revealing nothing
    with pytest.raises(Denied) as hidden:
        rbac.require(actor, "registry.version_create", other_model)
    assert hidden.value.status_code == 404


@pytest.mark.django_db
def test_team_bindings_apply_to_every_member(system, make_user, team, models):
    # given: the credit team holds contributor on its own models, and a user joins the team
    own_model, other_model = models
    rbac.role_grant(actor=system, subject=team, role="contributor", team=team)
    member = principal_for_user(make_user(member_of=[team]))
    outsider = principal_for_user(make_user())
    # then
    assert rbac.allows(member, "registry.version_create", own_model)
    assert not rbac.allows(member, "registry.version_create", other_model)
    assert not rbac.allows(outsider, "registry.view", own_model)


@pytest.mark.django_db
@pytest.mark.parametrize("other_role", ["reviewer", "compliance_officer", "admin"])
def test_an_auditor_can_never_approve_even_with_an_approving_role(make_user, models, other_role):
    # given: someone who is an auditor and also holds a role that approves
    own_model, _ = models
    user = make_user("auditor")
    rbac.role_grant(actor=Principal.system("tests"), subject=user, role=other_role)
    actor = principal_for_user(user)
    # then: the approving role alone would allow it, but the auditor binding forbids it
    assert rbac.allows(actor, "releases.approve", own_model)
    assert rbac.can_approve(actor, own_model) is False


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["reviewer", "compliance_officer", "admin"])
def test_approving_roles_can_approve(make_user, models, role):
    own_model, _ = models
    assert rbac.can_approve(principal_for_user(make_user(role)), own_model) is True


@pytest.mark.django_db
def test_a_read_only_token_cannot_register_even_if_its_owner_is_a_contributor(system, make_user, team, models):
    # given: a contributor on the credit team, authenticating with a token scoped to "read"
    own_model, _ = models
    user = make_user("contributor", team=team)
    token, _ = accounts.token_create(actor=system, name="ci", user=user, scopes=["read"])
    actor = principal_for_token(token)
    # then: reading works, registering does not, and the refusal names the missing scope
    assert rbac.allows(actor, "registry.view", own_model)
    with pytest.raises(Denied, match="registry:write") as denied:
        rbac.require(actor, "registry.version_create", own_model)
    assert denied.value.status_code == 403
    # while the same person signed in (no token) may register
    assert rbac.allows(principal_for_user(user), "registry.version_create", own_model)


@pytest.mark.django_db
def test_a_token_with_every_scope_cannot_widen_a_viewer(system, make_user, team, models):
    # given: a viewer holding a token with every scope
    own_model, _ = models
    user = make_user("viewer", team=team)
    token, _ = accounts.token_create(actor=system, name="ci", user=user, scopes=ALL_SCOPES)
    actor = principal_for_token(token)
    # then: the token adds nothing to the viewer role
    assert rbac.allows(actor, "registry.view", own_model)
    for permission in ("registry.version_create", "registry.model_create", "releases.approve", "releases.deploy"):
        assert not rbac.allows(actor, permission, own_model), permission
    assert not rbac.has_global(actor, "audit.view")
    assert not rbac.has_global(actor, "accounts.manage")


@pytest.mark.django_db
def test_a_token_narrows_an_admin(system, make_user, models):
    # given: an admin's token limited to reading the audit trail
    user = make_user("admin")
    token, _ = accounts.token_create(actor=system, name="audit-export", user=user, scopes=["audit:read"])
    actor = principal_for_token(token)
    # then
    assert rbac.has_global(actor, "audit.export")
    assert not rbac.has_global(actor, "accounts.manage")
    assert not rbac.allows(actor, "registry.view", models[0])


@pytest.mark.django_db
def test_a_service_account_has_its_own_roles_not_its_owners(system, make_user, team, models):
    # given: an admin who owns a CI service account bound only as contributor on the credit team
    own_model, other_model = models
    owner = make_user("admin")
    account = ServiceAccountFactory(name="ci-credit", owner=owner, team=team)
    rbac.role_grant(actor=system, subject=account, role="contributor", team=team)
    actor = principal_for_service_account(account)
    # then: it may register on its team's models, and nothing of its owner's admin powers carries over
    assert rbac.allows(actor, "registry.version_create", own_model)
    assert not rbac.allows(actor, "registry.view", other_model)
    assert not rbac.has_global(actor, "accounts.manage")


@pytest.mark.django_db
def test_a_service_account_counts_as_its_owner_for_segregation_of_duties(make_user):
    # given: a person, their CI service account, and someone else
    owner = make_user()
    someone_else = make_user()
    account = ServiceAccountFactory(owner=owner)
    ci = principal_for_service_account(account)
    # then
    assert same_person(ci, principal_for_user(owner))
    assert same_person(principal_for_user(owner), ci)
    assert not same_person(ci, principal_for_user(someone_else))
    assert ci.key != principal_for_user(owner).key  # still different principals in the trail


def test_principals_are_compared_by_kind_and_id_never_id_alone():
    # given: user 7 and service account 7 (owned by user 99)
    user_7 = Principal(kind=PrincipalKind.USER, id=7, name="alice")
    account_7 = Principal(kind=PrincipalKind.SERVICE_ACCOUNT, id=7, name="ci", owner_user_id=99)
    # then: they are different principals and different people
    assert user_7.key != account_7.key
    assert not same_person(user_7, account_7)
    assert same_person(account_7, Principal(kind=PrincipalKind.USER, id=99, name="bob"))
    # and the system or anonymous is nobody's "same person"
    assert not same_person(Principal.system(), Principal.system())
    assert not same_person(Principal.anonymous(), user_7)


@pytest.mark.django_db
def test_nobody_without_a_binding_sees_anything(make_user, models):
    actor = principal_for_user(make_user())
    assert list(registry.model_list(actor=actor)) == []
    assert not rbac.allows(actor, "registry.view", models[0])
    assert rbac.teams_with(actor, "registry.view") == set()


# ---- the same rules, seen through the API a CI pipeline calls ---------------------------------


def _register(client, team):
    return client.post("/api/v1/models/", {"name": "new-model", "owner_team": team.name}, format="json")


@pytest.mark.django_db
def test_api_a_read_only_token_of_a_contributor_cannot_register_a_model(api_client_for, make_user, team, audit_mark):
    # given: a contributor of the team, calling with a token that has only the "read" scope
    client = api_client_for(make_user("contributor", team=team), scopes=["read"])
    mark = audit_mark()
    # when
    response = _register(client, team)
    # then: 403 naming the missing scope, nothing registered, the refusal audited
    assert response.status_code == 403
    assert "registry:write" in response.json()["detail"]
    assert not RegisteredModel.objects.filter(name="new-model").exists()
    assert [(e.action, e.outcome) for e in mark.new()] == [("model.created", "denied")]


@pytest.mark.django_db
def test_api_a_viewer_with_every_scope_cannot_register_a_model(api_client_for, make_user, team):
    client = api_client_for(make_user("viewer", team=team), scopes=ALL_SCOPES)
    response = _register(client, team)
    assert response.status_code == 403
    assert not RegisteredModel.objects.filter(name="new-model").exists()


@pytest.mark.django_db
def test_api_a_contributor_with_the_write_scope_registers_a_model(api_client_for, make_user, team, audit_mark):
    client = api_client_for(make_user("contributor", team=team), scopes=["read", "registry:write"])
    mark = audit_mark()
    assert _register(client, team).status_code == 201
    assert mark.actions(outcome="success") == ["model.created"]
