"""The API says what is wrong in words a pipeline log can show: a 403 names which of the two is missing,
the API token's scope or the account's role, with a stable code; a 400 for an unknown environment or team
lists the valid values the caller may see."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.releases.models import ReleaseRequest
from tests.factories.accounts import TeamFactory

pytestmark = pytest.mark.django_db

RELEASES = "/api/v1/releases/"
GATE = "/api/v1/models/churn/versions/1/gate/"


def _body(environment="staging", **kw):
    return {"model": "churn", "version": 1, "environment": environment, "justification": "weekly refresh", **kw}


# ---------------------------------------------------------------------------------------------
# 403: the token's scope or the account's role


def test_a_token_without_the_scope_is_told_so_and_that_the_role_would_allow_it(
    api_client_for, requester, version, staging
):
    # given a contributor (who may request releases) whose CI token is read-only
    client = api_client_for(requester, scopes=["read"])
    # when the pipeline requests a release with it
    response = client.post(RELEASES, _body(), format="json")
    # then the 403 says the token lacks releases:write, not that the account lacks the permission
    body = response.json()
    assert response.status_code == 403
    assert body["code"] == "token_scope_missing" and body["title"] == "Token scope missing"
    assert body["detail"].startswith("Your API token is missing the 'releases:write' scope")
    assert "contributor" in body["detail"] and "would allow it on churn v1 to staging" in body["detail"]
    assert (body["permission"], body["token_scope"]) == ("releases.request", "releases:write")
    assert body["role_allows"] is True and body["token_has_scope"] is False
    # and the refused attempt is audited with that sentence
    event = AuditEvent.objects.filter(action="release.requested", outcome="denied").get()
    assert "missing the 'releases:write' scope" in event.reason
    assert not ReleaseRequest.objects.exists()


def test_an_account_without_the_role_is_told_which_permission_where_and_which_roles_grant_it(
    api_client_for, make_user, team, version, staging
):
    # given a viewer of the team, with a token carrying every scope
    viewer = make_user("viewer", username="vic", team=team)
    response = api_client_for(viewer).post(RELEASES, _body(), format="json")
    # then the 403 is the account's: which permission, on what, and the roles that grant it
    body = response.json()
    assert response.status_code == 403 and body["code"] == "permission_denied"
    assert body["detail"].startswith("Your account lacks the 'releases.request' permission on churn v1 to staging")
    assert "contributor or admin" in body["detail"] and "token" not in body["detail"]
    assert body["role_allows"] is False and body["token_has_scope"] is True
    assert body["granted_by_roles"] == ["contributor", "admin"]
    # when the token also lacks the scope, the account's lack comes first and the token's is added
    both = api_client_for(viewer, scopes=["read"]).post(RELEASES, _body(), format="json").json()
    assert both["code"] == "permission_denied"
    assert both["detail"].endswith("Your API token also lacks the 'releases:write' scope it needs.")
    assert AuditEvent.objects.filter(action="release.requested", outcome="denied").count() == 2


def test_a_permission_only_a_global_binding_grants_says_so(api_client_for, make_user, team):
    admin_of_team = make_user("admin", username="tad", team=team)
    body = api_client_for(admin_of_team).post("/api/v1/environments/", {"name": "qa"}, format="json").json()
    assert body["code"] == "permission_denied"
    assert "'accounts.manage' permission globally" in body["detail"]
    assert "through a global binding" in body["detail"]


def test_an_object_the_account_cannot_see_stays_a_plain_404(api_client_for, make_user, version, staging):
    # given someone of another team, whose token lacks the scope as well
    stranger = make_user("contributor", username="sam", team=TeamFactory(name="ads"))
    response = api_client_for(stranger, scopes=["read"]).post(RELEASES, _body(), format="json")
    # then neither the model's name nor the permission's words leak: a 404 as for nothing there
    body = response.json()
    assert response.status_code == 404 and body["code"] == "not_found" and body["detail"] == "Not found."
    assert "permission" not in body and "token_scope" not in body


# ---------------------------------------------------------------------------------------------
# 400: unknown names list the valid ones (those the caller may see)


def test_an_unknown_environment_lists_the_environments(api_client_for, requester, version, staging, production):
    client = api_client_for(requester)
    # the gate
    gate = client.get(GATE, {"environment": "prod"})
    assert gate.status_code == 400
    assert gate.json()["detail"] == "Unknown environment 'prod'; known environments: production, staging."
    assert gate.json()["valid_values"] == {"environment": ["production", "staging"]}
    # a release request
    created = client.post(RELEASES, _body(environment="prod"), format="json")
    assert created.status_code == 400 and created.json()["valid_values"] == {"environment": ["production", "staging"]}
    assert "production, staging" in created.json()["errors"]["environment"][0]
    # the release list's filter: a known environment without releases is an empty page, an unknown one a 400
    assert client.get(RELEASES, {"environment": "production"}).json()["count"] == 0
    listed = client.get(RELEASES, {"environment": "prod"})
    assert listed.status_code == 400 and listed.json()["valid_values"] == {"environment": ["production", "staging"]}
    # and a release status outside the set names the set
    status = client.get(RELEASES, {"status": "done"}).json()
    assert "pending_approval" in status["detail"] and "approved" in status["valid_values"]["status"]


def test_an_unknown_team_lists_only_the_teams_the_caller_can_see(api_client_for, make_user, team, other_team):
    # given a contributor of team credit; team marketing exists but is not theirs
    cora = make_user("contributor", username="cora", team=team)
    body = {"name": "scoring", "owner_team": "credits", "risk_tier": "minimal"}
    # when they register a model for a misspelt team
    response = api_client_for(cora).post("/api/v1/models/", body, format="json")
    # then the 400 lists their team and never the other one
    problem = response.json()
    assert response.status_code == 400
    assert problem["detail"] == "owner_team: no team named 'credits'; teams you can see: credit."
    assert problem["valid_values"] == {"owner_team": ["credit"]}
    assert "marketing" not in response.content.decode()
    # an admin sees every team, so every team is listed
    admin = make_user("admin", username="ada")
    listed = api_client_for(admin).post("/api/v1/models/", body, format="json").json()
    assert listed["valid_values"] == {"owner_team": ["credit", "marketing"]}


def test_an_unknown_team_in_a_policy_binding_lists_the_teams(api_client_for, make_user, team, other_team):
    officer = make_user("compliance_officer", username="cleo")
    response = api_client_for(officer).post(
        "/api/v1/policies/baseline/bindings/", {"team": "nobody", "environment": "staging"}, format="json"
    )
    assert response.status_code == 400, response.content
    assert response.json()["valid_values"] == {"team": ["credit", "marketing"]}


def test_a_value_outside_a_fields_choices_is_refused_with_the_valid_values(api_client_for, make_user, team):
    # given a contributor registering a model with a risk tier that does not exist
    cora = make_user("contributor", username="cora", team=team)
    body = {"name": "scoring", "owner_team": team.name, "risk_tier": "severe", "data_categories": ["personal"]}
    # when the model is registered, and again with an unknown data category
    tier = api_client_for(cora).post("/api/v1/models/", body, format="json")
    body.update(risk_tier="high", data_categories=["personal", "genetic"])
    category = api_client_for(cora).post("/api/v1/models/", body, format="json")
    # then each 400 names the refused value and lists every valid one, and no model was made
    assert tier.status_code == category.status_code == 400
    assert tier.json()["detail"] == (
        'risk_tier: "severe" is not a valid choice; valid values: minimal, limited, high, unacceptable.'
    )
    assert '"genetic" is not a valid choice; valid values: personal, health, payment_card' in category.json()["detail"]
    assert not AuditEvent.objects.filter(action="model.created", target_name="scoring").exists()
