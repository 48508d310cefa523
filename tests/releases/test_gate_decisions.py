"""The gate answers from the stored decision the reacting jobs make: ``evaluating`` before the first one,
the new decision after each event that changes it (version verified, evidence, model facts, policies,
environments, requests), the same decision as the request's, never a policy evaluation in the read, and a
fixed number of queries whatever the packs, approvals and evidence."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.audit.models import AuditEvent
from apps.evidence import runs
from apps.evidence.choices import RunStatus
from apps.jobs.events import job_kind
from apps.jobs.models import Job
from apps.registry import verification
from apps.registry.choices import VersionStatus
from apps.registry.services import model_update
from apps.releases import gate_decisions, services
from apps.releases.models import GateDecision
from tests.factories.policies import bias_summary
from tests.factories.registry import ModelVersionFactory
from tests.releases.conftest import add_evidence, who
from tests.releases.test_reads import assert_pure_read

pytestmark = pytest.mark.django_db

GATE = "/api/v1/models/churn/versions/1/gate/"


@pytest.fixture
def reader(api_client_for, requester):
    client = api_client_for(requester, scopes=["read"])
    assert client.get("/api/v1/environments/").status_code == 200  # the token's first use is recorded now
    return client


def stored(version, env_name="staging") -> dict:
    return GateDecision.objects.get(version=version, environment__name=env_name).decision


def agree(release) -> None:
    """The request and the gate are judged on the same decision."""
    release.refresh_from_db()
    row = stored(release.version, release.environment.name)
    assert {p: row.get(p) for p in services.DECISION_PARTS} == {
        p: release.decision.get(p) for p in services.DECISION_PARTS
    }


def test_before_the_job_ran_the_gate_says_evaluating_and_writes_nothing(reader, version, staging, decided):
    body = assert_pure_read(lambda: reader.get(GATE, {"environment": "staging"})).json()
    assert body["allowed"] is False and body["status"] == "evaluating"
    assert "being computed" in body["reasons"][0] and "?wait=" in body["reasons"][0]
    assert body["binding_digest"] is None and body["evaluated_at"] is None
    assert not GateDecision.objects.exists()
    # once the job made it, the gate answers the stored decision, still writing nothing
    decided()
    body = assert_pure_read(lambda: reader.get(GATE, {"environment": "staging"})).json()
    assert body["status"] == "release_required" and body["binding_digest"] == stored(version)["binding_digest"]


def test_a_verified_version_gets_its_decisions_from_the_reaction(reader, model, author, staging, production, react):
    ModelVersionFactory(model=model, number=1, created_by=author, status=VersionStatus.PENDING_VERIFICATION)
    assert reader.get(GATE, {"environment": "staging"}).json()["status"] == "evaluating"
    version = model.versions.get(number=1)
    assert verification.version_mark_ready(version_id=version.pk, sha256="e" * 64, size=10) == VersionStatus.READY
    assert ("event:model_version.verified", "releases", "succeeded") in react()
    assert set(GateDecision.objects.filter(version=version).values_list("environment__name", flat=True)) == {
        "staging",
        "production",
    }
    assert reader.get(GATE, {"environment": "staging"}).json()["status"] == "release_required"
    # audited once per stored decision, by the system
    events = AuditEvent.objects.filter(action="release.gate_decided", target_id=str(version.pk))
    assert events.count() == 2


def test_new_evidence_updates_the_stored_decision_and_the_gate(
    request_release, requester, reviewer, version, reader, decided, react, django_capture_on_commit_callbacks
):
    # given an approved release whose gate is open
    release = request_release(requester, version)
    services.approval_decide(actor=who(reviewer), release_id=release.public_id, decision="approve")
    decided()
    agree(release)
    assert reader.get(GATE, {"environment": "staging"}).json()["status"] == "allowed"
    before = stored(version)["binding_digest"]
    # when an evidence run succeeds
    run = add_evidence(version, "bias", status=RunStatus.RUNNING)
    with django_capture_on_commit_callbacks(execute=True):
        runs.evidence_run_succeed(run_id=run.pk, summary=bias_summary(), engine_versions={})
    # then until the reaction ran the gate answers the stored decision; after it, the new one
    assert stored(version)["binding_digest"] == before
    react()
    after = stored(version)
    assert after["binding_digest"] != before and str(run.public_id) in [e["run"] for e in after["evidence"]]
    body = reader.get(GATE, {"environment": "staging"}).json()
    assert body["allowed"] is False and body["status"] == "pending_approval"
    assert body["binding_digest"] == after["binding_digest"]
    agree(release)
    # and a repeated reaction writes nothing (the decision did not change)
    count = AuditEvent.objects.filter(action="release.gate_decided").count()
    assert gate_decisions.gate_decisions_refresh(version_ids=[version.pk], reason="again") == 0
    assert AuditEvent.objects.filter(action="release.gate_decided").count() == count


def test_changed_model_facts_update_the_stored_decision(request_release, requester, author, team, decided, react):
    from tests.factories.policies import compliant_model, compliant_version

    model = compliant_model(name="credit-limit", owner_team=team, risk_tier="limited")
    version = compliant_version(model, number=1, created_by=author, sha256="c" * 64)
    release = request_release(requester, version, environment="production", change_reference="CHG-1")
    decided()
    facts = stored(version, "production")["facts_sha256"]
    # when the author raises the model to high risk (the model update service)
    model_update(actor=who(author), name=model.name, changes={"risk_tier": "high"})
    assert stored(version, "production")["facts_sha256"] == facts  # the reaction has not run yet
    assert ("event:model.updated", "releases", "succeeded") in react()
    # then the stored decision is made on the new facts, asks what high risk needs, and agrees with the request
    decision = stored(version, "production")
    assert decision["facts_sha256"] != facts
    assert {r["role"] for r in decision["required_approvals"]} == {"compliance_officer", "reviewer"}
    agree(release)


def test_a_policy_change_re_judges_every_version_in_batches(
    request_release, requester, reviewer, officer, version, model, author, decided, react, monkeypatch
):
    from apps.policies import services as policies
    from tests.policies.test_api import GOOD

    ModelVersionFactory(model=model, number=2, created_by=author, sha256="f" * 64)
    release = request_release(requester, version)
    decided()
    monkeypatch.setattr(gate_decisions, "BATCH", 1)
    # when a compliance officer binds a new pack to every model
    policies.policy_pack_create(actor=who(officer), name="loan-limits", source=GOOD)
    policies.policy_binding_create(actor=who(officer), pack_name="loan-limits")
    done = react()
    # then each change queued one stale-decision job per batch of versions, and the workers ran them
    assert done.count(("event:gate_decisions.stale", "releases", "succeeded")) == 4  # 2 changes x 2 versions
    assert Job.objects.filter(kind=job_kind("gate_decisions.stale")).count() == 4
    for number in (1, 2):
        decision = stored(model.versions.get(number=number))
        assert "loan-limits" in [p["name"] for p in decision["packs"]]
    agree(release)


def test_a_new_environment_gets_every_version_judged(version, staging, decided, react, make_user):
    decided()
    env = services.environment_create(actor=who(make_user("admin")), name="canary")
    assert not GateDecision.objects.filter(environment=env).exists()
    react()
    assert GateDecision.objects.filter(environment=env, version=version).exists()


def test_a_request_state_change_updates_the_gate(request_release, requester, reviewer, version, reader, react):
    release = request_release(requester, version)
    react()
    assert reader.get(GATE, {"environment": "staging"}).json()["status"] == "pending_approval"
    agree(release)
    services.approval_decide(actor=who(reviewer), release_id=release.public_id, decision="approve")
    react()
    assert reader.get(GATE, {"environment": "staging"}).json()["status"] == "allowed"
    agree(release)


def test_the_gate_costs_a_fixed_number_of_queries(
    request_release, requester, reviewer, officer, high_version, api_client_for, decided
):
    from apps.policies import services as policies
    from tests.policies.test_api import GOOD

    gate = f"/api/v1/models/{high_version.model.name}/versions/1/gate/"
    client = api_client_for(requester, scopes=["read"])
    assert client.get("/api/v1/environments/").status_code == 200

    answers = []

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(gate, {"environment": "production"})
        assert response.status_code == 200
        answers.append(response.json()["status"])
        return len(captured.captured_queries)

    # a pending request, no approval yet
    release = request_release(requester, high_version, environment="production", change_reference="CHG-3")
    decided()
    first = count()
    # more packs, more evidence runs, more approvals: the same number of queries
    policies.policy_pack_create(actor=who(officer), name="loan-limits", source=GOOD)
    policies.policy_binding_create(actor=who(officer), pack_name="loan-limits")
    for _ in range(3):
        add_evidence(high_version, "bias")
        add_evidence(high_version, "explainability")
    decided()  # the request is re-judged on the new basis, the gate's decision re-made
    release.refresh_from_db()
    services.approval_decide(
        actor=who(reviewer), release_id=release.public_id, decision="approve", binding_digest=release.binding_digest
    )
    decided()
    assert len(stored(high_version, "production")["packs"]) > 1
    assert count() == first
    services.approval_decide(
        actor=who(officer), release_id=release.public_id, decision="approve", binding_digest=release.binding_digest
    )
    decided()
    assert count() == first
    assert answers == ["pending_approval", "pending_approval", "allowed"]
    assert first <= 10, first  # the token, the version, its scope, the environment, the requests, the decision
