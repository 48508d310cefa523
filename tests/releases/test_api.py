"""Releases API: the permission triad for every endpoint, audit events after every write, the gate, and
environment-scoped role bindings."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.audit.models import AuditEvent
from apps.releases.models import Environment, ReleaseRequest

pytestmark = pytest.mark.django_db

RELEASES = "/api/v1/releases/"
GATE = "/api/v1/models/churn/versions/1/gate/"


def _body(environment="staging", **kw):
    return {"model": "churn", "version": 1, "environment": environment, "justification": "weekly refresh", **kw}


@pytest.fixture
def rex(api_client_for, requester):
    return api_client_for(requester)


@pytest.fixture
def rita(api_client_for, reviewer):
    return api_client_for(reviewer)


@pytest.fixture
def requested(rex, version):
    response = rex.post(RELEASES, _body(), format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _denied(mark, action):
    return [e for e in mark.new(outcome="denied") if e.action == action]


# ---------------------------------------------------------------------------------------------
# Anonymous, no role, wrong role, right role


def test_anonymous_is_401_everywhere(anon_client, requested):
    url = f"{RELEASES}{requested['id']}/"
    for method, path in [
        ("get", RELEASES),
        ("post", RELEASES),
        ("get", url),
        ("post", f"{url}approvals/"),
        ("post", f"{url}cancel/"),
        ("post", f"{url}review/"),
        ("get", f"{GATE}?environment=staging"),
        ("get", "/api/v1/environments/"),
        ("post", "/api/v1/environments/"),
    ]:
        assert getattr(anon_client, method)(path, {}, format="json").status_code == 401, (method, path)


def test_without_a_role_releases_are_not_found(make_user, api_client_for, requested, audit_mark):
    client = api_client_for(make_user())
    url = f"{RELEASES}{requested['id']}/"
    mark = audit_mark()
    assert client.get(url).status_code == 404
    assert client.get(RELEASES).json()["results"] == []
    assert client.post(RELEASES, _body(), format="json").status_code == 404
    assert client.post(f"{url}approvals/", {"decision": "approve"}, format="json").status_code == 404
    assert client.post(f"{url}cancel/", {}, format="json").status_code == 404
    assert client.get(f"{GATE}?environment=staging").status_code == 404
    denied = [e.action for e in mark.new(outcome="denied")]
    assert {"release.requested", "release.approval_recorded", "release.cancelled"} <= set(denied)


def test_a_contributor_requests_a_release_and_it_is_audited(rex, version, audit_mark):
    mark = audit_mark()
    response = rex.post(RELEASES, _body(), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert response["Location"].endswith(f"/api/v1/releases/{body['id']}/")
    assert body["status"] == "pending_approval" and body["environment"] == "staging"
    assert body["requested_by"] == {"user": "rex", "service_account": None}
    assert body["decision"]["artifact_sha256"] == version.sha256
    assert body["approvals"]["required"] == [{"role": "reviewer", "count": 1, "reason": "", "filled": 0}]
    events = mark.new()
    assert [e.action for e in events] == ["release.requested"]
    assert events[0].target_id == body["id"] and events[0].actor_name == "rex"


def test_a_reviewer_may_not_request_but_approves(rita, rex, requested, audit_mark):
    mark = audit_mark()
    assert rita.post(RELEASES, _body(), format="json").status_code == 403
    assert [e.action for e in _denied(mark, "release.requested")] == ["release.requested"]
    # the requester cannot approve their own request (four eyes), and it is audited as denied
    own = rex.post(f"{RELEASES}{requested['id']}/approvals/", {"decision": "approve"}, format="json")
    assert own.status_code == 403
    mark = audit_mark()
    response = rita.post(
        f"{RELEASES}{requested['id']}/approvals/",
        {"decision": "approve", "comment": "looks fine", "binding_digest": requested["binding_digest"]},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "approved"
    assert body["approvals"]["received"][0]["person"] == "rita"
    assert body["approvals"]["received"][0]["fills"] == "reviewer"
    assert mark.actions() == ["release.approval_recorded", "release.approved"]
    # a second decision by the same person is a 409
    again = rita.post(f"{RELEASES}{requested['id']}/approvals/", {"decision": "approve"}, format="json")
    assert again.status_code == 409


def test_a_rejection_without_a_reason_is_400_and_with_one_ends_the_request(rita, requested, audit_mark):
    url = f"{RELEASES}{requested['id']}/approvals/"
    assert rita.post(url, {"decision": "reject"}, format="json").status_code == 400
    mark = audit_mark()
    response = rita.post(url, {"decision": "reject", "comment": "no drift baseline"}, format="json")
    assert response.status_code == 201 and response.json()["status"] == "rejected"
    assert mark.actions() == ["release.approval_recorded", "release.rejected"]


def test_cancel_by_the_requester(rex, rita, requested, audit_mark):
    url = f"{RELEASES}{requested['id']}/cancel/"
    mark = audit_mark()
    assert rita.post(url, {}, format="json").status_code == 403
    assert _denied(mark, "release.cancelled")
    mark = audit_mark()
    response = rex.post(url, {"reason": "superseded"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert mark.actions() == ["release.cancelled"]


def test_an_unknown_environment_is_400_and_production_needs_a_change_reference(rex, version):
    assert rex.post(RELEASES, _body("moon"), format="json").status_code == 400
    response = rex.post(RELEASES, _body("production"), format="json")
    assert response.status_code == 400 and "change_reference" in response.json()["errors"]
    assert ReleaseRequest.objects.count() == 0


def test_blocking_violations_are_a_409_with_the_violations(rex, model, author):
    from tests.factories.registry import ModelVersionFactory

    ModelVersionFactory(model=model, number=2, created_by=author, format="pickle")
    response = rex.post(RELEASES, {**_body(), "version": 2}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "policy_not_satisfied"
    assert [v["rule"] for v in response.json()["violations"]] == ["security.safe_format"]


def test_the_list_filters_and_its_query_count_is_pinned(rex, rita, request_release, requester, model, author):
    from tests.factories.registry import ModelVersionFactory

    for number in range(1, 6):
        version = ModelVersionFactory(model=model, number=number, created_by=author)
        request_release(requester, version)
    rita.get(RELEASES)  # the token's first use records itself
    # when
    with CaptureQueriesContext(connection) as few:
        response = rita.get(RELEASES, {"environment": "staging", "model": "churn", "status": "pending_approval"})
    # then
    assert response.status_code == 200 and response.json()["count"] == 5
    for number in range(6, 11):
        request_release(requester, ModelVersionFactory(model=model, number=number, created_by=author))
    with CaptureQueriesContext(connection) as many:
        response = rita.get(RELEASES)
    assert response.json()["count"] == 10
    assert len(many) == len(few) == 4  # count, page, approvals (token and grants: one query, cached)
    assert rita.get(RELEASES, {"status": "approved"}).json()["count"] == 0


# ---------------------------------------------------------------------------------------------
# Environments


def test_environments_are_listed_and_only_admins_define_more(make_user, api_client_for, rex, audit_mark):
    names = [e["name"] for e in rex.get("/api/v1/environments/").json()]
    assert names == ["production", "staging"]
    mark = audit_mark()
    assert rex.post("/api/v1/environments/", {"name": "canary"}, format="json").status_code == 403
    assert _denied(mark, "environment.created")
    admin = api_client_for(make_user("admin"))
    mark = audit_mark()
    response = admin.post(
        "/api/v1/environments/",
        {"name": "eu-prod", "production": True, "requires_change_reference": True},
        format="json",
    )
    assert response.status_code == 201 and response.json()["production"] is True
    assert mark.actions() == ["environment.created"]
    assert admin.post("/api/v1/environments/", {"name": "eu-prod"}, format="json").status_code == 409


# ---------------------------------------------------------------------------------------------
# Environment-scoped role bindings


def test_an_environment_scoped_reviewer_approves_in_staging_only(
    make_user, api_client_for, request_release, requester, version, staging, production, system, audit_mark
):
    from apps.rbac import services as rbac

    # given a reviewer bound to the staging environment only
    sam = make_user(username="sam")
    rbac.role_grant(actor=system, subject=sam, role="reviewer", environment=staging)
    client = api_client_for(sam)
    in_staging = request_release(requester, version, "staging")
    in_production = request_release(requester, version, "production", change_reference="CHG-9")
    # then they see only the staging request
    assert [r["id"] for r in client.get(RELEASES).json()["results"]] == [str(in_staging.public_id)]
    # and may approve it
    ok = client.post(f"{RELEASES}{in_staging.public_id}/approvals/", {"decision": "approve"}, format="json")
    assert ok.status_code == 201 and ok.json()["status"] == "approved"
    # but the production request is not theirs to see or approve: 404, audited
    mark = audit_mark()
    refused = client.post(f"{RELEASES}{in_production.public_id}/approvals/", {"decision": "approve"}, format="json")
    assert refused.status_code == 404
    assert _denied(mark, "release.approval_recorded")
    # nor does the environment scope reach the model itself
    assert client.get("/api/v1/models/churn/").status_code == 404


def test_a_staging_release_manager_breaks_the_glass_in_staging_and_not_in_production(
    make_user, api_client_for, version, staging, team, system, audit_mark
):
    from apps.rbac import services as rbac

    # given a release manager for staging only, who can see the team's models
    max_ = make_user("viewer", username="maxine", team=team)
    rbac.role_grant(actor=system, subject=max_, role="release_manager", environment=staging)
    client = api_client_for(max_)
    emergency = {**_body(), "emergency": True, "justification": "outage"}
    # when they ask in staging, it is allowed
    ok = client.post(RELEASES, emergency, format="json")
    assert ok.status_code == 201 and ok.json()["emergency"] is True and ok.json()["review"]["status"] == "open"
    # and in production it is refused: 403 (they may see the model), audited
    mark = audit_mark()
    refused = client.post(RELEASES, {**emergency, "environment": "production", "change_reference": "C"}, format="json")
    assert refused.status_code == 403
    assert _denied(mark, "release.emergency_requested")


def test_environment_bindings_through_the_admin_api_and_the_command(make_user, api_client_for, staging):
    from django.core.management import call_command

    from apps.rbac.models import RoleBinding

    admin = api_client_for(make_user("admin"))
    make_user(username="sam")
    response = admin.post(
        "/api/v1/role-bindings/",
        {"subject_type": "user", "subject": "sam", "role": "reviewer", "scope_environment": "staging"},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["scope_type"] == "environment" and response.json()["scope_environment"] == "staging"
    bad = admin.post(
        "/api/v1/role-bindings/",
        {"subject_type": "user", "subject": "sam", "role": "reviewer", "scope_environment": "moon"},
        format="json",
    )
    assert bad.status_code == 400
    make_user(username="tom")
    call_command("role_grant", "--user", "tom", "--role", "release_manager", "--environment", "staging")
    binding = RoleBinding.objects.get(user__username="tom")
    assert binding.scope_environment == staging and str(binding) == "user tom is Release manager on environment staging"


# ---------------------------------------------------------------------------------------------
# The gate


def test_the_gate_says_no_with_reasons_then_yes(
    api_client_for, ci_account, rex, rita, version, team, system, decided, react
):
    from apps.rbac import services as rbac

    # given CI asks with a read-only token
    rbac.role_grant(actor=system, subject=ci_account, role="viewer", team=team)
    ci = api_client_for(ci_account, scopes=["read"])
    # when nothing was requested (and the version's gate decisions are made)
    decided()
    body = ci.get(GATE, {"environment": "staging"}).json()
    assert body["allowed"] is False and body["status"] == "release_required" and body["release"] is None
    # when a release waits for approval
    requested = rex.post(RELEASES, _body(), format="json").json()
    react()
    body = ci.get(GATE, {"environment": "staging"}).json()
    assert body["allowed"] is False and body["status"] == "pending_approval"
    assert body["release"].endswith(f"/api/v1/releases/{requested['id']}/")
    assert body["approvals"]["required"][0]["filled"] == 0
    # when approved
    rita.post(f"{RELEASES}{requested['id']}/approvals/", {"decision": "approve"}, format="json")
    react()
    body = ci.get(GATE, {"environment": "staging"}).json()
    assert body["allowed"] is True and body["status"] == "allowed"
    assert body["approvals"]["received"][0]["fills"] == "reviewer"
    # and production is still closed
    assert ci.get(GATE, {"environment": "production"}).json()["allowed"] is False
    # a missing or unknown environment is a 400
    assert ci.get(GATE).status_code == 400
    assert ci.get(GATE, {"environment": "moon"}).status_code == 400


def test_the_gate_reports_blocking_violations(rex, model, author, decided):
    from tests.factories.registry import ModelVersionFactory

    ModelVersionFactory(model=model, number=2, created_by=author, format="pickle")
    decided()
    body = rex.get("/api/v1/models/churn/versions/2/gate/", {"environment": "staging"}).json()
    assert body["allowed"] is False and body["status"] == "blocked"
    assert body["violations"][0]["rule"] == "security.safe_format"


def test_review_close_through_the_api(api_client_for, manager, officer, version, audit_mark):
    created = api_client_for(manager).post(RELEASES, {**_body(), "emergency": True}, format="json").json()
    url = f"{RELEASES}{created['id']}/review/"
    cleo = api_client_for(officer)
    assert cleo.post(url, {"findings": ""}, format="json").status_code == 400
    mark = audit_mark()
    response = cleo.post(url, {"findings": "root cause fixed"}, format="json")
    assert response.status_code == 200 and response.json()["review"]["status"] == "closed"
    assert mark.actions() == ["post_release_review.closed"]
    assert AuditEvent.objects.filter(action="release.emergency_requested").count() == 1
    assert Environment.objects.count() == 2
