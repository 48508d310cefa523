"""Reads never write: the gate, the release page and the version page answer from stored state (and a
read-only evaluation) whatever the request's state; "evaluated at" is when the decision was made; the
gate explains segregation of duties to the pipeline that registered the version; approval rules read
pending until their approvals are given."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.rbac import services as rbac
from apps.releases import selectors, services
from apps.releases.choices import ReleaseStatus
from apps.releases.models import ReleaseRequest
from tests.releases.conftest import add_evidence, who

pytestmark = pytest.mark.django_db

GATE = "/api/v1/models/churn/versions/1/gate/"
WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def approve(user, release):
    return services.approval_decide(actor=who(user), release_id=release.public_id, decision="approve")


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def row_counts() -> dict[str, int]:
    with connection.cursor() as cursor:
        counts = {}
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT count(*) FROM "{table}"')  # noqa: S608 - table names from the schema
            counts[table] = cursor.fetchone()[0]
        return counts


def assert_pure_read(read):
    """Run ``read`` and fail if it sent any INSERT, UPDATE or DELETE, or changed any table's row count."""
    before = row_counts()
    with CaptureQueriesContext(connection) as captured:
        result = read()
    written = [q["sql"] for q in captured.captured_queries if q["sql"].lstrip().upper().startswith(WRITES)]
    assert written == [], written
    assert row_counts() == before
    return result


@pytest.fixture
def reader(api_client_for, requester):
    """A read-only API client whose token has been used once already (recording its first use is a write
    of the authentication, not of the gate)."""
    client = api_client_for(requester, scopes=["read"])
    assert client.get("/api/v1/environments/").status_code == 200
    return client


def test_the_gate_and_the_pages_write_nothing_even_on_a_stale_or_overdue_request(
    request_release, requester, reviewer, version, reader, production, decided
):
    # given an approved staging release whose evidence has moved on (not yet re-judged by the job)
    approved = request_release(requester, version)
    approve(reviewer, approved)
    add_evidence(version, "bias")
    # and a production request past its expiry time that the periodic task has not closed yet
    overdue = request_release(requester, version, environment="production", change_reference="CHG-1")
    ReleaseRequest.objects.filter(pk=overdue.pk).update(expires_at=timezone.now() - timedelta(minutes=5))
    decided()  # the stored gate decisions are made (the requests themselves are left as they are)
    page = logged_in(requester)
    page.get("/releases/")  # the session's first request
    # when CI asks the gate, and people read the release pages and the version page
    staging = assert_pure_read(lambda: reader.get(GATE, {"environment": "staging"}))
    prod = assert_pure_read(lambda: reader.get(GATE, {"environment": "production"}))
    stale_page = assert_pure_read(lambda: page.get(f"/releases/{approved.public_id}/"))
    overdue_page = assert_pure_read(lambda: page.get(f"/releases/{overdue.public_id}/"))
    version_page = assert_pure_read(lambda: page.get("/models/churn/versions/1/"))
    api_read = assert_pure_read(lambda: reader.get(f"/api/v1/releases/{overdue.public_id}/"))
    # then every answer is there and honest: the stale approval does not open the gate, the overdue one reads expired
    assert staging.status_code == prod.status_code == api_read.status_code == 200
    assert staging.json()["allowed"] is False and staging.json()["status"] == "pending_approval"
    assert prod.json()["allowed"] is False and prod.json()["status"] == "expired"
    assert stale_page.status_code == overdue_page.status_code == version_page.status_code == 200
    assert b'id="expired-due"' in overdue_page.content and b'id="decide-form"' not in overdue_page.content
    # and the stored states are those the services left: the writes are the job's and the periodic task's
    assert ReleaseRequest.objects.get(pk=approved.pk).status == ReleaseStatus.APPROVED
    assert ReleaseRequest.objects.get(pk=overdue.pk).status == ReleaseStatus.PENDING_APPROVAL
    assert services.releases_expire_due() == 1
    assert ReleaseRequest.objects.get(pk=overdue.pk).status == ReleaseStatus.EXPIRED
    services.releases_reevaluate(version_ids=[version.pk], reason="new evidence")
    assert ReleaseRequest.objects.get(pk=approved.pk).status == ReleaseStatus.PENDING_APPROVAL


def test_evaluated_at_is_when_the_decision_was_made_not_when_it_was_read(
    request_release, requester, reviewer, version, reader, decided
):
    # given a request judged two days ago
    release = request_release(requester, version)
    approve(reviewer, release)
    decided()
    judged_at = timezone.now() - timedelta(days=2)
    release.refresh_from_db()
    ReleaseRequest.objects.filter(pk=release.pk).update(
        evaluated_at=judged_at, decision={**release.decision, "evaluated_at": judged_at.isoformat()}
    )
    # when it is read today, the API, the page and the gate all say when it was decided
    body = reader.get(f"/api/v1/releases/{release.public_id}/").json()
    assert body["evaluated_at"].startswith(judged_at.strftime("%Y-%m-%dT%H:%M:%S"))
    page = logged_in(requester).get(f"/releases/{release.public_id}/").content.decode()
    # (the page's one time format shows minutes; its <time> element carries the exact instant)
    assert f'<time datetime="{judged_at.isoformat()}">{judged_at.strftime("%Y-%m-%d %H:%M UTC")}</time>' in page
    gate = reader.get(GATE, {"environment": "staging"}).json()
    assert gate["allowed"] is True and gate["evaluated_at"].startswith(judged_at.strftime("%Y-%m-%dT%H:%M:%S"))
    # when the request's decision is no longer current, the gate answers the stored gate decision made since
    add_evidence(version, "bias")
    decided()
    gate = reader.get(GATE, {"environment": "staging"}).json()
    assert gate["allowed"] is False
    assert timezone.now() - timezone.datetime.fromisoformat(gate["evaluated_at"]) < timedelta(minutes=1)
    # and a re-evaluation that changes it stamps the request with its own time
    services.releases_reevaluate(version_ids=[version.pk], reason="new evidence")
    release.refresh_from_db()
    assert timezone.now() - release.evaluated_at < timedelta(minutes=1)
    assert release.decision["evaluated_at"] == release.evaluated_at.isoformat()


# ---------------------------------------------------------------------------------------------
# Segregation of duties in the gate's reasons, and the CI example of docs/api.md


def test_the_pipeline_that_registered_the_version_is_told_who_may_request_and_approve(
    api_client_for, ci_account, author, requester, reviewer, model, team, system, staging, decided, react
):
    from tests.factories.registry import ModelVersionFactory

    # given the author's CI service account registered the version, and holds contributor on the team
    ModelVersionFactory(
        model=model, number=1, created_by=author, created_by_service_account=ci_account, sha256="d" * 64
    )
    rbac.role_grant(actor=system, subject=ci_account, role="contributor", team=team)
    decided()
    # when the pipeline asks the gate with a read token (docs/api.md) and nothing was requested
    ci_read = api_client_for(ci_account, scopes=["read"])
    body = ci_read.get(GATE, {"environment": "staging"}).json()
    # then the gate says a release is required, who requests it, and that the author cannot approve
    assert body["status"] == "release_required"
    text = " ".join(body["reasons"])
    assert "cannot approve" in text and "ci-churn" in text and author.username in text
    assert "releases:write" in text and "reviewer" in text
    # when the pipeline requests the release with a releases:write token (as the example in docs/api.md does)
    ci_write = api_client_for(ci_account, scopes=["read", "releases:write"])
    created = ci_write.post(
        "/api/v1/releases/",
        {"model": "churn", "version": 1, "environment": "staging", "justification": "CI run 42"},
        format="json",
    )
    assert created.status_code == 201, created.content
    react()
    # then the gate tells it the release waits for someone other than its owner
    body = ci_read.get(GATE, {"environment": "staging"}).json()
    assert body["status"] == "pending_approval"
    assert any("cannot approve" in r for r in body["reasons"])
    assert any(r.startswith("Waiting for approvals: reviewer 0 of 1") for r in body["reasons"])
    # and indeed its owner cannot approve, a reviewer can, and then the gate opens
    owner = api_client_for(author)
    refused = owner.post(f"/api/v1/releases/{created.json()['id']}/approvals/", {"decision": "approve"}, format="json")
    assert refused.status_code == 403
    approved = api_client_for(reviewer).post(
        f"/api/v1/releases/{created.json()['id']}/approvals/", {"decision": "approve"}, format="json"
    )
    assert approved.status_code == 201
    react()
    body = ci_read.get(GATE, {"environment": "staging"}).json()
    assert body["allowed"] is True and not any("cannot approve" in r for r in body["reasons"])
    # someone else asking is not told about the author's duties
    other = api_client_for(requester, scopes=["read"]).get(GATE, {"environment": "production"}).json()
    assert not any("cannot approve" in r for r in other["reasons"])


# ---------------------------------------------------------------------------------------------
# Approval rules read honestly


def _rules(client, release) -> dict[str, str]:
    return {r["rule"]: r["result"] for r in client.get(f"/api/v1/releases/{release.public_id}/").json()["rules"]}


def test_an_approval_rule_is_pending_until_its_slot_is_filled(
    request_release, requester, reviewer, officer, high_version, api_client_for
):
    # given a high-risk production request: the baseline asks for a reviewer, the EU AI Act for an officer
    release = request_release(requester, high_version, environment="production", change_reference="CHG-2")
    client = api_client_for(requester, scopes=["read"])
    rules = _rules(client, release)
    # then neither approval rule reads "pass" before anyone approved
    assert rules["baseline.production_review"] == "pending"
    assert rules["eu_ai_act.high_risk_compliance_approval"] == "pending"
    body = client.get(f"/api/v1/releases/{release.public_id}/").json()
    assert [r["rule"] for r in body["decision"]["rules"]] == [r["rule"] for r in body["rules"]]
    # when the reviewer approves, the baseline passes and the officer's rule still waits
    approve(reviewer, release)
    rules = _rules(client, release)
    assert rules["baseline.production_review"] == "pass"
    assert rules["eu_ai_act.high_risk_compliance_approval"] == "pending"
    page = logged_in(requester).get(f"/releases/{release.public_id}/").content.decode()
    assert 'data-rule="eu_ai_act.high_risk_compliance_approval"><td>' in page
    assert "Waiting for compliance officer approval (0 of 1)" in page
    # when the officer approves, both pass
    approve(officer, release)
    rules = _rules(client, release)
    assert rules["baseline.production_review"] == rules["eu_ai_act.high_risk_compliance_approval"] == "pass"


def test_the_four_eyes_floor_reads_as_a_rule_and_failing_rules_sort_first(request_release, requester, version):
    release = request_release(requester, version)
    # staging asks for no approval in the packs: the four-eyes floor is shown, pending
    approvals = selectors.approvals_summary(release, release.decision)
    rules = selectors.release_rules(release.decision, approvals)
    assert [r for r in rules if r["rule"] == "releases.four_eyes"][0]["result"] == "pending"
    # failing rules first, then pending, warnings, passes, not applicable
    decision = {
        "rules": [
            {"rule": "a", "pack": "p", "clause": "", "title": "", "result": "pass", "message": ""},
            {"rule": "b", "pack": "p", "clause": "", "title": "", "result": "not_applicable", "message": ""},
            {"rule": "c", "pack": "p", "clause": "", "title": "", "result": "warning", "message": "w"},
            {"rule": "d", "pack": "p", "clause": "", "title": "", "result": "fail", "message": "f"},
        ],
        "required_approvals": [],
    }
    ordered = selectors.release_rules(decision, {"required": [{"role": "reviewer", "count": 1, "filled": 0}]})
    assert [r["result"] for r in ordered] == ["fail", "pending", "warning", "pass", "not_applicable"]


def test_a_rule_that_carries_a_measured_value_shows_it_against_its_threshold(request_release, requester, version):
    release = request_release(requester, version)
    rules = [*release.decision["rules"]]
    rules.append(
        {
            "rule": "fairness.demographic_parity",
            "pack": "fairness",
            "clause": "Internal F-1",
            "title": "Demographic parity within the threshold",
            "result": "fail",
            "message": "above the threshold",
            "measured": 0.12,
            "threshold": 0.1,
        }
    )
    ReleaseRequest.objects.filter(pk=release.pk).update(decision={**release.decision, "rules": rules})
    page = logged_in(requester).get(f"/releases/{release.public_id}/").content.decode()
    assert "measured 0.12 · threshold 0.1" in page
    assert page.index('data-rule="fairness.demographic_parity"') < page.index('data-rule="releases.four_eyes"')


# ---------------------------------------------------------------------------------------------
# The gate previews who may request and who may approve, with the rules the services enforce


@pytest.fixture
def ledger(team, author, ci_account, system, staging, production):
    """A SOX-bound (financial) model whose version the author's CI service account registered; the
    account holds contributor on the team, as the README's CI set-up grants it."""
    from tests.factories.policies import compliant_model, compliant_version

    model = compliant_model(name="ledger", owner_team=team, data_categories=["personal", "financial"])
    version = compliant_version(
        model, number=1, created_by=author, created_by_service_account=ci_account, sha256="c" * 64
    )
    rbac.role_grant(actor=system, subject=ci_account, role="contributor", team=team)
    return version


LEDGER_GATE = "/api/v1/models/ledger/versions/1/gate/"
PRODUCTION = {"environment": "production"}


def used(client):
    """The client, its token's first use (a write of the authentication, not of the gate) done."""
    assert client.get("/api/v1/environments/").status_code == 200
    return client


def _request_body(justification: str) -> dict:
    return {
        "model": "ledger",
        "version": 1,
        "environment": "production",
        "justification": justification,
        "change_reference": "C-1",
    }


def _previews(client) -> tuple[dict, dict, dict]:
    body = assert_pure_read(lambda: client.get(LEDGER_GATE, PRODUCTION)).json()
    return body, body["request_preview"], body["approval_preview"]


def test_the_gate_previews_that_the_pipeline_may_not_request_and_who_may(
    api_client_for, ci_account, ledger, reviewer, make_user, team, system, decided
):
    decided()
    ci = used(api_client_for(ci_account, scopes=["read", "releases:write"]))
    # when the pipeline that registered the version asks the gate before any request
    body, request, approval = _previews(ci)
    # then the gate says a release is required and previews that a request from it would be refused (SOX)
    assert body["status"] == "release_required" and body["violations"] == []
    assert request["caller_may"] is False and request["code"] == "segregation_of_duties"
    assert "the requester is the version's author" in request["reason"]
    assert request["reason"] in body["reasons"]
    assert "contributor or admin on team credit" in request["who"] and "releases:write" in request["who"]
    # and a pipeline token without releases:write is told the same first (widening the token would not help)
    narrow = used(api_client_for(ci_account, scopes=["read"]))
    _, narrow_request, _ = _previews(narrow)
    assert narrow_request["code"] == "segregation_of_duties"
    assert narrow_request["reason"].endswith("(Your API token also lacks the 'releases:write' scope.)")
    # and that it cannot approve either, and who can
    assert approval["caller_may"] is False and approval["code"] == "permission_denied"
    assert "1 reviewer" in approval["who"] and "the version's author, ava" in approval["who"]
    # and the request it would make is refused for exactly that rule
    refused = ci.post(
        "/api/v1/releases/",
        {
            "model": "ledger",
            "version": 1,
            "environment": "production",
            "justification": "CI",
            "change_reference": "C-1",
        },
        format="json",
    )
    assert refused.status_code == 409 and "the requester is the version's author" in refused.json()["detail"]
    # while another member of the team, a contributor who reviews too, is told they may request it, and does
    lead = make_user("contributor", username="lea", team=team)
    rbac.role_grant(actor=system, subject=lead, role="reviewer", team=team)
    lea = used(api_client_for(lead))
    _, request, _ = _previews(lea)
    assert request == {**request, "caller_may": True, "code": None}
    created = lea.post(
        "/api/v1/releases/",
        {
            "model": "ledger",
            "version": 1,
            "environment": "production",
            "justification": "Q4",
            "change_reference": "C-1",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    # then its requester may not approve (four eyes), another reviewer may, an auditor may not; nobody requests again
    _, request, approval = _previews(lea)
    assert request["code"] == "live_release_exists"
    assert approval["caller_may"] is False and approval["code"] == "four_eyes"
    assert "its requester, lea" in approval["who"] and approval["reason"].startswith("You requested this release")
    rita = used(api_client_for(reviewer))
    _, _, approval = _previews(rita)
    assert approval == {**approval, "caller_may": True, "code": None}
    _, _, approval = _previews(used(api_client_for(make_user("auditor", username="aud"))))
    assert approval["caller_may"] is False and approval["code"] == "permission_denied"
    # and the previews agree with the approval service: the requester's approval is refused, the reviewer's counts
    url = f"/api/v1/releases/{created.json()['id']}/approvals/"
    four_eyes = lea.post(url, {"decision": "approve"}, format="json")
    assert four_eyes.status_code == 403 and "four eyes" in four_eyes.json()["detail"]
    assert rita.post(url, {"decision": "approve"}, format="json").status_code == 201
    body, _, approval = _previews(rita)
    assert body["allowed"] is True and approval["code"] == "nothing_to_approve"


def test_a_read_only_pipeline_token_is_told_the_scope_it_lacks_to_request(api_client_for, requester, version, staging):
    body = api_client_for(requester, scopes=["read"]).get(GATE, {"environment": "staging"}).json()
    request = body["request_preview"]
    assert request["caller_may"] is False and request["code"] == "token_scope_missing"
    assert "'releases:write' scope" in request["reason"] and "(contributor)" in request["reason"]


def test_a_gate_that_waits_writes_nothing_either(request_release, requester, version, reader, settings, decided):
    # given a request nobody decides on, and a short bound on waiting
    request_release(requester, version)
    decided()
    settings.ASSAY_GATE_MAX_WAIT, settings.ASSAY_GATE_POLL_SECONDS = 0.1, 0.02
    # when the pipeline waits on the gate until the bound
    body = assert_pure_read(lambda: reader.get(GATE, {"environment": "staging", "wait": "5"})).json()
    # then it polled and answered without a write
    assert body["wait_outcome"] == "timeout" and body["status"] == "pending_approval"


def test_the_gate_and_its_previews_evaluate_no_policy(
    api_client_for, ci_account, ledger, make_user, team, system, decided, monkeypatch
):
    """The request preview reads what the reacting job judged for a request by the author and by anyone else
    (``gate_decisions.REQUESTER_REFUSALS``): a gate call never reaches the policy engine."""
    from apps.policies import decisions

    decided()

    def refuse(*args, **kwargs):
        raise AssertionError("the gate evaluated a policy")

    monkeypatch.setattr(decisions, "policy_decide", refuse)
    monkeypatch.setattr(decisions, "policy_decide_each", refuse)
    # the author's pipeline is refused by the stored judgement of a request by the author (SOX) ...
    _, request, _ = _previews(used(api_client_for(ci_account, scopes=["read", "releases:write"])))
    assert request["code"] == "segregation_of_duties"
    # ... and another contributor of the team may request it, from the judgement of a request by someone else
    colleague = make_user("contributor", username="lea", team=team)
    _, request, _ = _previews(used(api_client_for(colleague, scopes=["read", "releases:write"])))
    assert request["caller_may"] is True and request["code"] is None
