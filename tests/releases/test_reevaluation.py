"""Re-evaluation: model facts bind approvals, every decision change is audited, it is idempotent, and
one live request per version and environment keeps it (and the gate) clear of collisions."""

from __future__ import annotations

import itertools

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.registry.services import model_update
from apps.releases import selectors, services
from apps.releases.choices import FINAL, LIVE, ReleaseStatus
from apps.releases.gate_decisions import gate_decisions_refresh
from apps.releases.models import Approval, ReleaseRequest
from tests.factories.policies import compliant_model, compliant_version
from tests.releases.conftest import add_evidence, who

pytestmark = pytest.mark.django_db


def approve(user, release, **kw):
    return services.approval_decide(actor=who(user), release_id=release.public_id, decision="approve", **kw)


def required(release) -> dict[str, int]:
    return {r["role"]: r["count"] for r in release.decision["required_approvals"]}


# ---------------------------------------------------------------------------------------------
# Model facts are part of what approvals are bound to


@pytest.fixture
def limited_version(team, author):
    """A limited-risk EU model whose documented facts satisfy the shipped packs, with its reports."""
    model = compliant_model(name="credit-limit", owner_team=team, risk_tier="limited")
    return compliant_version(model, number=1, created_by=author, sha256="c" * 64)


def test_raising_the_risk_tier_voids_the_approval_and_asks_for_what_high_risk_needs(
    request_release, requester, reviewer, officer, author, limited_version, audit_mark
):
    # given a limited-risk model's production release, approved by one reviewer
    release = request_release(requester, limited_version, environment="production", change_reference="CHG-7")
    assert required(release) == {"reviewer": 1}
    first = approve(reviewer, release)
    release.refresh_from_db()
    assert release.status == ReleaseStatus.APPROVED
    env = release.environment
    gate_decisions_refresh(version_ids=[limited_version.pk], reason="approved")  # the reaction's part for the gate
    assert selectors.gate_for(version=limited_version, environment=env).allowed
    old_digest, old_facts = release.binding_digest, release.decision["facts_sha256"]
    # when its author raises the model to high risk (the model update service) and the releases are re-judged
    model_update(actor=who(author), name=limited_version.model.name, changes={"risk_tier": "high"})
    # (once the gate's decision is re-made, even before the request is re-judged, the gate no longer opens on
    # approvals given for a limited-risk model)
    gate_decisions_refresh(version_ids=[limited_version.pk], reason="model.updated")
    assert not selectors.gate_for(version=limited_version, environment=env).allowed
    mark = audit_mark()
    reset = services.releases_reevaluate(model_id=limited_version.model_id, reason="model.updated")
    # then the approved release is approved no more: back to pending approval, its approval void
    assert [r.pk for r in reset] == [release.pk]
    release.refresh_from_db()
    first.refresh_from_db()
    assert release.status == ReleaseStatus.PENDING_APPROVAL and release.approved_at is None
    assert first.void and "model facts" in first.void_reason
    # and it needs what the packs require of a high-risk model: a compliance officer besides the reviewer
    assert required(release) == {"compliance_officer": 1, "reviewer": 1}
    assert release.binding_digest != old_digest and release.decision["facts_sha256"] != old_facts
    # audited as voided approvals (digests before and after, the reason, which facts moved), then the reset
    assert mark.actions() == ["release.approvals_voided", "release.reset"]
    voided = mark.new(action="release.approvals_voided")[0]
    assert voided.before["binding_digest"] == old_digest and voided.before["facts_sha256"] == old_facts
    assert voided.after["binding_digest"] == release.binding_digest
    assert voided.after["facts_changed"] == ["model.risk_tier"] and voided.after["approvals_voided"] == 1
    assert voided.reason == "model.updated"
    gate = selectors.gate_for(version=limited_version, environment=env)
    assert not gate.allowed and gate.status == "pending_approval"
    assert {r["role"]: r["filled"] for r in gate.approvals["required"]} == {"compliance_officer": 0, "reviewer": 0}
    # when both approve again on the new basis, it is approved again
    approve(reviewer, release)
    approve(officer, release)
    release.refresh_from_db()
    assert release.status == ReleaseStatus.APPROVED
    assert selectors.gate_for(version=limited_version, environment=env).allowed


def test_every_model_fact_the_packs_read_moves_the_digest(limited_version, production):
    from apps.policies.decisions import policy_decide
    from apps.policies.inputs import bound_facts
    from apps.registry.models import RegisteredModel

    env = production.as_policy_input()
    base = policy_decide(version=limited_version, environment=env)
    model_facts = bound_facts(base.input)["model"]
    changes = {
        "data_categories": ["personal", "financial"],
        "jurisdictions": ["eu", "us"],
        "fairness_thresholds": {"demographic_parity_difference": 0.05, "equalized_odds_difference": 0.1},
        "dpia_reference": "DPIA-2026-009",
        "human_review_path": "Write to appeals@example.test",
        "human_oversight": "Two officers review every decline",
        "minimisation_justification": "Only income and term are used",
        "automated_decisions": False,
        "intended_use": "Limit setting",
    }
    assert set(changes) <= set(model_facts)
    for field, value in changes.items():
        RegisteredModel.objects.filter(pk=limited_version.model_id).update(**{field: value})
        after = policy_decide(version=limited_version, environment=env)
        assert after.binding_digest != base.binding_digest, field
        base = after


# ---------------------------------------------------------------------------------------------
# A changed decision is always audited; an unchanged one writes nothing

ACCESS_WATCH = """package assay.access_watch

import rego.v1

applies := true

rules := [{
	"rule": "access_watch.named_teams", "clause": "Internal policy A-1",
	"title": "Only named teams read the model", "applies": true,
}]

violations contains v if {
	input.access.broad
	v := {
		"rule": "access_watch.named_teams", "message": "Internal policy A-1: global grants let others read the model",
		"clause": "Internal policy A-1", "severity": "warning",
	}
}
"""


def test_a_rule_result_that_flips_under_the_same_digest_is_audited(
    request_release, requester, reviewer, officer, version, make_user, audit_mark, system
):
    from apps.policies import services as policies
    from apps.rbac import services as rbac

    # given a pack that warns when global grants let others read a model, and an approved release
    policies.policy_pack_create(actor=who(officer), name="access-watch", source=ACCESS_WATCH)
    policies.policy_binding_create(actor=who(officer), pack_name="access-watch")
    release = request_release(requester, version)
    approve(reviewer, release)
    release.refresh_from_db()
    digest, decided = release.binding_digest, release.evaluated_at
    assert not release.decision["violations"]
    # when someone is given a global role (access is not a fact approvals are bound to)
    rbac.role_grant(actor=system, subject=make_user(username="gus"), role="contributor")
    mark = audit_mark()
    assert services.releases_reevaluate(version_ids=[version.pk], reason="access changed") == []
    # then the digest is the same and the approval still counts, but the new decision is stored and audited
    release.refresh_from_db()
    assert release.binding_digest == digest and release.status == ReleaseStatus.APPROVED
    assert [v["rule"] for v in release.decision["violations"]] == ["access_watch.named_teams"]
    assert release.evaluated_at > decided
    assert release.decision["evaluated_at"] == release.evaluated_at.isoformat()
    assert mark.actions() == ["release.reevaluated"]
    event = mark.new()[0]
    assert event.before["rules"] == {"access-watch:access_watch.named_teams": "pass"}
    assert event.after["rules"] == {"access-watch:access_watch.named_teams": "warning"}
    assert event.after["violations"] == ["access_watch.named_teams"] and event.reason == "access changed"
    # and re-judging again writes nothing: no event, no new evaluation time
    mark = audit_mark()
    services.releases_reevaluate(version_ids=[version.pk], reason="access changed")
    assert mark.actions() == []
    assert ReleaseRequest.objects.get(pk=release.pk).evaluated_at == release.evaluated_at


def test_re_evaluating_an_unchanged_request_writes_nothing(request_release, requester, reviewer, version, audit_mark):
    release = request_release(requester, version)
    approve(reviewer, release)
    release.refresh_from_db()
    mark = audit_mark()
    assert services.releases_reevaluate(version_ids=[version.pk], reason="nightly") == []
    assert mark.actions() == []
    again = ReleaseRequest.objects.get(pk=release.pk)
    assert (again.updated_at, again.evaluated_at) == (release.updated_at, release.evaluated_at)


def test_an_approval_on_a_changed_basis_is_refused_and_the_reset_kept(
    request_release, requester, reviewer, author, limited_version, audit_mark
):
    # given a pending request the reviewer has the page of
    release = request_release(requester, limited_version, environment="production", change_reference="CHG-8")
    # when the model's facts change before the reviewer approves (no re-evaluation has run yet)
    model_update(actor=who(author), name=limited_version.model.name, changes={"risk_tier": "high"})
    mark = audit_mark()
    with pytest.raises(services.DecisionChanged):
        approve(reviewer, release)
    # then the approval service re-judged it under its lock: the reset is committed, no approval recorded
    assert mark.actions() == ["release.reset"]
    release.refresh_from_db()
    assert required(release) == {"compliance_officer": 1, "reviewer": 1}
    assert not Approval.objects.filter(release=release).exists()
    # and on the new basis the approval counts
    approve(reviewer, release, binding_digest=release.binding_digest)
    assert Approval.objects.filter(release=release, void=False).count() == 1


# ---------------------------------------------------------------------------------------------
# One live request per version and environment


def test_the_database_refuses_a_second_live_request(request_release, requester, version):
    first = request_release(requester, version)
    clone = ReleaseRequest(
        version=first.version,
        model=first.model,
        owner_team=first.owner_team,
        environment=first.environment,
        status=ReleaseStatus.APPROVED,
        justification="again",
        decision=first.decision,
        binding_digest=first.binding_digest,
        evaluated_at=first.evaluated_at,
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        clone.save()


STATUSES = [s.value for s in ReleaseStatus]
COEXISTING = [(a, b) for a, b in itertools.product(STATUSES, STATUSES) if not (a in LIVE and b in LIVE)]


def _force(release: ReleaseRequest, status: str) -> None:
    now = timezone.now()
    ReleaseRequest.objects.filter(pk=release.pk).update(
        status=status,
        approved_at=now if status == ReleaseStatus.APPROVED else None,
        expires_at=None if status == ReleaseStatus.APPROVED else release.expires_at,
        closed_at=now if status in FINAL else None,
    )


@pytest.mark.parametrize(("older", "newer"), COEXISTING)
def test_re_evaluation_and_the_gate_over_every_pair_of_states_that_may_coexist(
    older, newer, request_release, requester, reviewer, version, api_client_for
):
    # given two requests of one version for one environment, in states that may coexist
    first = request_release(requester, version)
    approve(reviewer, first)
    _force(first, older)
    second = ReleaseRequest.objects.create(
        version=first.version,
        model=first.model,
        owner_team=first.owner_team,
        environment=first.environment,
        status=newer,
        justification="again",
        requested_by=first.requested_by,
        decision=first.decision,
        binding_digest=first.binding_digest,
        evaluated_at=first.evaluated_at,
        expires_at=None if newer == ReleaseStatus.APPROVED else first.expires_at,
        approved_at=timezone.now() if newer == ReleaseStatus.APPROVED else None,
        closed_at=timezone.now() if newer in FINAL else None,
    )
    # when new evidence moves the decision and the live requests and the gate are re-judged
    add_evidence(version, "bias")
    reset = services.releases_reevaluate(version_ids=[version.pk], reason="new evidence")
    gate_decisions_refresh(version_ids=[version.pk], reason="new evidence")
    # then the live one (if any) is back to pending, the final ones untouched, and nothing collided
    live = [r for r in (first, second) if (older if r is first else newer) in LIVE]
    assert [r.pk for r in reset] == [r.pk for r in live]
    for release, was in ((first, older), (second, newer)):
        release.refresh_from_db()
        assert release.status == (ReleaseStatus.PENDING_APPROVAL if was in LIVE else was)
    # and the gate answers
    response = api_client_for(requester, scopes=["read"]).get(
        "/api/v1/models/churn/versions/1/gate/", {"environment": "staging"}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["allowed"] is False
    assert body["status"] == ("pending_approval" if live else newer)  # no live request: the newest one says why


def test_a_second_request_through_the_api_is_a_problem_naming_the_live_one(api_client_for, requester, version):
    client = api_client_for(requester)
    body = {"model": "churn", "version": 1, "environment": "staging", "justification": "weekly refresh"}
    first = client.post("/api/v1/releases/", body, format="json")
    assert first.status_code == 201
    second = client.post("/api/v1/releases/", body, format="json")
    assert second.status_code == 409
    assert second["Content-Type"].startswith("application/problem+json")
    problem = second.json()
    assert problem["code"] == "live_release_exists"
    assert problem["live_release"] == {"id": first.json()["id"], "status": "pending_approval"}
    assert first.json()["id"] in problem["detail"]
    assert ReleaseRequest.objects.count() == 1
