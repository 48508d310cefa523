"""Release services: the state machine, four eyes in every form, role matching, resets, expiry, break-glass."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.errors import Conflict, Denied, ValidationFailed
from apps.releases import selectors, services
from apps.releases.choices import ReleaseStatus, ReviewStatus
from apps.releases.matching import match
from apps.releases.models import Approval, ReleaseRequest
from tests.factories.policies import bias_summary
from tests.factories.registry import ModelVersionFactory
from tests.releases.conftest import add_evidence, who

pytestmark = pytest.mark.django_db


def approve(user_or_principal, release, **kw):
    actor = who(user_or_principal) if hasattr(user_or_principal, "username") else user_or_principal
    return services.approval_decide(actor=actor, release_id=release.public_id, decision="approve", **kw)


def reject(user, release, comment="not good enough"):
    return services.approval_decide(actor=who(user), release_id=release.public_id, decision="reject", comment=comment)


def status_of(release) -> str:
    release.refresh_from_db()
    return release.status


# ---------------------------------------------------------------------------------------------
# The simple flow


def test_a_request_waits_for_a_reviewer_then_is_approved(
    request_release, requester, reviewer, version, audit_mark, django_capture_on_commit_callbacks, decided
):
    mark = audit_mark()
    # when a contributor asks to release a minimal-risk version to staging
    release = request_release(requester, version)
    # then it waits for approval, with the decision it was judged on stored
    assert release.status == ReleaseStatus.PENDING_APPROVAL
    assert release.decision["artifact_sha256"] == version.sha256
    assert release.binding_digest == release.decision["binding_digest"]
    assert release.decision["packs"]
    assert release.expires_at > timezone.now()
    assert mark.actions() == ["release.requested"]
    # when a reviewer approves
    approval = approve(reviewer, release)
    # then the release is approved and the approval bound to the decision's digest
    assert status_of(release) == ReleaseStatus.APPROVED
    assert approval.binding_digest == release.binding_digest and approval.roles == ["reviewer"]
    assert mark.actions()[1:] == ["release.approval_recorded", "release.approved"]
    decided()
    gate = selectors.gate_for(version=version, environment=release.environment)
    assert gate.allowed and gate.status == "allowed"


def test_a_justification_is_required_and_production_needs_a_change_reference(request_release, requester, version):
    with pytest.raises(ValidationFailed, match="justification"):
        request_release(requester, version, justification="  ")
    with pytest.raises(ValidationFailed, match="change reference"):
        request_release(requester, version, environment="production")
    assert ReleaseRequest.objects.count() == 0


def test_one_live_request_per_version_and_environment(request_release, requester, reviewer, version):
    # given a pending request, a second one is refused and names the live one
    first = request_release(requester, version)
    with pytest.raises(services.LiveReleaseExists, match="already has a live release request") as refused:
        request_release(requester, version)
    assert refused.value.extra["live_release"] == {"id": str(first.public_id), "status": "pending_approval"}
    # and once it is approved, too (an approved request is live until it is deployed or cancelled)
    approve(reviewer, first)
    with pytest.raises(services.LiveReleaseExists, match="approved"):
        request_release(requester, version)
    # after it is cancelled, the version may be requested again
    services.release_cancel(actor=who(requester), release_id=first.public_id)
    assert request_release(requester, version).status == ReleaseStatus.PENDING_APPROVAL


def test_a_reviewer_may_not_request_a_release(request_release, reviewer, version, audit_mark):
    mark = audit_mark()
    with pytest.raises(Denied) as refused:
        request_release(reviewer, version)
    assert refused.value.visible  # they see the version's releases: 403, not 404
    assert ReleaseRequest.objects.count() == 0 and mark.actions() == []  # the handlers audit the denial


# ---------------------------------------------------------------------------------------------
# Four eyes


def test_the_requester_cannot_approve_their_own_request(request_release, make_user, team, version):
    # given a person who is both contributor and reviewer on the team
    both = make_user("contributor", username="bo", team=team)
    from apps.core.principals import Principal
    from apps.rbac import services as rbac

    rbac.role_grant(actor=Principal.system(), subject=both, role="reviewer", team=team)
    release = request_release(both, version)
    # when they approve their own request
    with pytest.raises(Denied, match="You requested this release"):
        approve(both, release)
    # then nothing counted
    assert Approval.objects.count() == 0 and status_of(release) == ReleaseStatus.PENDING_APPROVAL


def test_the_versions_author_cannot_approve(request_release, requester, author, version, system):
    from apps.rbac import services as rbac

    rbac.role_grant(actor=system, subject=author, role="reviewer")
    release = request_release(requester, version)
    with pytest.raises(Denied, match="author of this version"):
        approve(author, release)
    assert Approval.objects.count() == 0


def test_the_author_cannot_approve_through_their_ci_service_account(
    request_release, requester, version, ci_account, ci_principal, system
):
    # given the author's CI account holds the reviewer role (a misconfiguration four eyes must survive)
    from apps.rbac import services as rbac

    rbac.role_grant(actor=system, subject=ci_account, role="reviewer")
    release = request_release(requester, version)
    # when the service account approves, it counts as its owner, the author
    with pytest.raises(Denied, match="author of this version"):
        approve(ci_principal, release)
    assert Approval.objects.count() == 0


def test_a_request_by_ci_is_the_owners_and_the_owner_cannot_approve_it(
    request_release, version, ci_account, ci_principal, make_user, team, system
):
    from apps.rbac import services as rbac

    rbac.role_grant(actor=system, subject=ci_account, role="contributor", team=team)
    release = request_release(ci_principal, version)
    assert release.requested_by_id == ci_account.owner_id
    assert release.requested_by_service_account_id == ci_account.pk


def test_one_person_counts_once(request_release, requester, reviewer, high_version, officer):
    # given a high-risk production request that needs a reviewer and a compliance officer
    release = request_release(requester, high_version, environment="production", change_reference="CHG-1")
    approve(officer, release)
    # when the same person approves again
    with pytest.raises(Conflict, match="one person counts once"):
        approve(officer, release)
    # then only one approval exists and the request still waits
    assert Approval.objects.filter(release=release).count() == 1
    assert status_of(release) == ReleaseStatus.PENDING_APPROVAL


def test_an_auditor_never_approves_even_with_a_reviewer_role(
    request_release, requester, make_user, team, version, system
):
    from apps.rbac import services as rbac

    auditor = make_user("auditor", username="audrey")
    rbac.role_grant(actor=system, subject=auditor, role="reviewer", team=team)
    release = request_release(requester, version)
    with pytest.raises(Denied, match="Auditors never approve"):
        approve(auditor, release)
    assert Approval.objects.count() == 0


# ---------------------------------------------------------------------------------------------
# Required roles and matching


def test_high_risk_in_production_needs_a_reviewer_and_a_compliance_officer(
    request_release, requester, reviewer, reviewer2, officer, high_version
):
    release = request_release(requester, high_version, environment="production", change_reference="CHG-2")
    roles = {r["role"]: r["count"] for r in release.decision["required_approvals"]}
    assert roles.get("compliance_officer") == 1
    approve(reviewer, release)
    # a second reviewer cannot stand in for the compliance officer
    with pytest.raises(services.ApprovalNotNeeded, match="compliance_officer"):
        approve(reviewer2, release)
    assert status_of(release) == ReleaseStatus.PENDING_APPROVAL
    approve(officer, release)
    assert status_of(release) == ReleaseStatus.APPROVED


def test_a_compliance_officer_approving_first_leaves_room_for_a_reviewer(
    request_release, requester, reviewer, officer, make_user, high_version
):
    # given the officer approves first (greedy would put them in the reviewer slot)
    release = request_release(requester, high_version, environment="production", change_reference="CHG-3")
    approve(officer, release)
    # when a reviewer approves, the matching moves the officer to the officer slot
    approve(reviewer, release)
    # then both slots are filled
    assert status_of(release) == ReleaseStatus.APPROVED


def test_matching_finds_an_assignment_greedy_would_miss():
    required = [("reviewer", 1), ("compliance_officer", 1)]
    # the officer arrives first and could fill either slot; the reviewer only one
    result = match(required, [("cleo", ["compliance_officer"]), ("rita", ["reviewer"])])
    assert result.complete
    assert {s.role: k for s, k in result.assigned.items()} == {"reviewer": "rita", "compliance_officer": "cleo"}
    # two reviewers never fill an officer slot
    assert not match(required, [("rita", ["reviewer"]), ("rob", ["reviewer"])]).complete
    # two slots of one role need two people
    assert not match([("reviewer", 2)], [("rita", ["reviewer"])]).complete
    assert match([("reviewer", 2)], [("rita", ["reviewer"]), ("cleo", ["compliance_officer"])]).complete


def test_a_rejection_needs_a_reason_and_ends_the_request(
    request_release, requester, reviewer, reviewer2, version, audit_mark
):
    release = request_release(requester, version)
    with pytest.raises(ValidationFailed, match="reason"):
        reject(reviewer, release, comment="")
    mark = audit_mark()
    reject(reviewer, release, comment="the evaluation set is stale")
    assert status_of(release) == ReleaseStatus.REJECTED
    assert release.closed_reason == "the evaluation set is stale"
    assert mark.actions() == ["release.approval_recorded", "release.rejected"]
    with pytest.raises(Conflict, match="rejected"):
        approve(reviewer2, release)


# ---------------------------------------------------------------------------------------------
# Binding digest, re-evaluation, expiry, revalidation


def test_new_evidence_voids_earlier_approvals_and_returns_the_request_to_pending(
    request_release, requester, reviewer, reviewer2, officer, high_version, audit_mark
):
    # given a high-risk production request the reviewer approved
    release = request_release(requester, high_version, environment="production", change_reference="CHG-4")
    first = approve(reviewer, release)
    digest = release.binding_digest
    # when new evidence arrives and the requests are re-evaluated
    add_evidence(high_version, "bias")
    mark = audit_mark()
    reset = services.releases_reevaluate(version_ids=[high_version.pk], reason="new evidence")
    # then the request is pending again, under a new digest, and the approval no longer counts
    assert [r.pk for r in reset] == [release.pk]
    release.refresh_from_db()
    first.refresh_from_db()
    assert release.binding_digest != digest
    assert first.void and "decision changed (evidence)" in first.void_reason
    assert mark.actions() == ["release.approvals_voided", "release.reset"]
    # and the officer alone does not approve it: the reviewer slot is open again
    approve(officer, release)
    assert status_of(release) == ReleaseStatus.PENDING_APPROVAL
    # the voided approver may decide again, on the new digest
    approve(reviewer, release)
    assert status_of(release) == ReleaseStatus.APPROVED


def test_an_approval_on_a_stale_digest_is_refused(request_release, requester, reviewer, version):
    release = request_release(requester, version)
    seen = release.binding_digest
    add_evidence(version, "bias")
    with pytest.raises(services.DecisionChanged):
        approve(reviewer, release, binding_digest=seen)
    # the lazy re-evaluation before it committed the reset
    release.refresh_from_db()
    assert release.binding_digest != seen and release.status == ReleaseStatus.PENDING_APPROVAL


def test_an_approved_release_is_reset_by_new_evidence_and_the_gate_closes(
    request_release, requester, reviewer, version, decided
):
    release = request_release(requester, version)
    approve(reviewer, release)
    decided()
    assert selectors.gate_for(version=version, environment=release.environment).allowed
    # when new evidence arrives before deployment
    add_evidence(version, "explainability")
    decided()  # the stored gate decision is re-made (here before the request's own re-evaluation ran)
    gate = selectors.gate_for(version=version, environment=release.environment)
    # then the gate says no, and why, though it writes nothing (the re-evaluation job resets the request)
    assert not gate.allowed and gate.status == "pending_approval"
    assert any("decision changed" in r for r in gate.reasons)
    assert status_of(release) == ReleaseStatus.APPROVED
    services.releases_reevaluate(version_ids=[version.pk], reason="new evidence")
    assert status_of(release) == ReleaseStatus.PENDING_APPROVAL
    assert selectors.gate_for(version=version, environment=release.environment).status == "pending_approval"


def test_evidence_finishing_re_evaluates_open_requests(
    request_release, requester, version, django_capture_on_commit_callbacks, audit_mark, react
):
    from apps.evidence import runs
    from apps.evidence.choices import RunStatus

    release = request_release(requester, version)
    run = add_evidence(version, "bias", status=RunStatus.RUNNING)
    mark = audit_mark()
    with django_capture_on_commit_callbacks(execute=True):
        runs.evidence_run_succeed(run_id=run.pk, summary=bias_summary(), engine_versions={})
    assert "release.reset" not in mark.actions()  # the re-judging is a reaction, run by a worker
    assert ("event:evidence_run.succeeded", "releases", "succeeded") in react()
    assert "release.reset" in mark.actions()
    release.refresh_from_db()
    assert str(run.public_id) in [e["run"] for e in release.decision["evidence"]]


def test_open_requests_expire(request_release, requester, reviewer, version, audit_mark, settings):
    release = request_release(requester, version)
    ReleaseRequest.objects.filter(pk=release.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    mark = audit_mark()
    # when the periodic job runs
    assert services.releases_expire_due() == 1
    # then it is expired, audited, and nobody can approve it any more
    assert status_of(release) == ReleaseStatus.EXPIRED
    assert mark.actions() == ["release.expired"]
    with pytest.raises(Conflict, match="expired"):
        approve(reviewer, release)


def test_an_approval_is_refused_once_the_request_expired_lazily(request_release, requester, reviewer, version):
    release = request_release(requester, version)
    ReleaseRequest.objects.filter(pk=release.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(Conflict, match="expired"):
        approve(reviewer, release)
    assert status_of(release) == ReleaseStatus.EXPIRED


def test_production_approvals_carry_a_revalidation_date_and_the_gate_reports_it_due(
    request_release, requester, reviewer, officer, high_version, settings, decided
):
    settings.ASSAY_REVALIDATION_MONTHS = "high=12,limited=24"
    release = request_release(requester, high_version, environment="production", change_reference="CHG-5")
    approve(reviewer, release)
    approve(officer, release)
    release.refresh_from_db()
    # then the approval must be renewed in twelve months
    assert 360 <= (release.revalidate_at - release.approved_at).days <= 366
    assert all(a.revalidate_at == release.revalidate_at for a in release.approvals.all())
    decided()
    assert selectors.gate_for(version=high_version, environment=release.environment).allowed
    # when the date passes
    ReleaseRequest.objects.filter(pk=release.pk).update(revalidate_at=timezone.now() - timedelta(days=1))
    gate = selectors.gate_for(version=high_version, environment=release.environment)
    assert not gate.allowed and gate.status == "revalidation_due"
    assert selectors.models_revalidation_due(model_ids=[high_version.model_id]) == {high_version.model_id}


def test_staging_approvals_need_no_revalidation(request_release, requester, reviewer, version):
    release = request_release(requester, version)
    approve(reviewer, release)
    release.refresh_from_db()
    assert release.revalidate_at is None


def test_cancel_by_the_requester_and_not_by_another_contributor(
    request_release, requester, make_user, team, version, audit_mark
):
    release = request_release(requester, version)
    other = make_user("contributor", username="olga", team=team)
    with pytest.raises(Denied):
        services.release_cancel(actor=who(other), release_id=release.public_id)
    mark = audit_mark()
    services.release_cancel(actor=who(requester), release_id=release.public_id, reason="wrong version")
    assert status_of(release) == ReleaseStatus.CANCELLED
    assert mark.actions() == ["release.cancelled"]
    with pytest.raises(Conflict):
        services.release_cancel(actor=who(requester), release_id=release.public_id)


# ---------------------------------------------------------------------------------------------
# Break-glass


def test_an_emergency_release_is_for_release_managers_with_a_justification(
    request_release, requester, manager, version, officer, audit_mark
):
    with pytest.raises(Denied):
        request_release(requester, version, emergency=True)
    mark = audit_mark()
    release = request_release(manager, version, emergency=True, justification="outage: the current model is down")
    # then it is approved at once, prominently recorded, and a review is open
    assert release.status == ReleaseStatus.APPROVED and release.emergency
    assert mark.actions() == [
        "release.requested",
        "release.emergency_requested",
        "release.approved",
        "post_release_review.opened",
    ]
    gate = selectors.gate_for(version=version, environment=release.environment)
    assert gate.allowed and gate.status == "emergency"
    # and the review waits in the compliance officer's queue
    queue = selectors.approval_queue(actor=who(officer))
    assert [(i.kind, i.release.pk) for i in queue] == [("review", release.pk)]


def test_a_compliance_officer_closes_the_review_with_findings(
    request_release, manager, officer, reviewer, version, audit_mark
):
    release = request_release(manager, version, emergency=True, justification="outage")
    with pytest.raises(Denied):
        services.post_release_review_close(actor=who(reviewer), release_id=release.public_id, findings="fine")
    with pytest.raises(ValidationFailed):
        services.post_release_review_close(actor=who(officer), release_id=release.public_id, findings="")
    mark = audit_mark()
    review = services.post_release_review_close(
        actor=who(officer), release_id=release.public_id, findings="Root cause fixed; evidence requested."
    )
    assert review.status == ReviewStatus.CLOSED and review.closed_by == officer
    assert mark.actions() == ["post_release_review.closed"]
    assert selectors.approval_queue(actor=who(officer)) == []


def test_blocking_violations_refuse_a_request_but_not_a_break_glass_release(
    request_release, requester, manager, model, author, decided
):
    # given a version whose artifact format may execute code (the security pack blocks it)
    unsafe = ModelVersionFactory(model=model, number=2, created_by=author, format="pickle")
    # when a contributor asks for it, the request is refused with the violations
    with pytest.raises(services.PolicyNotSatisfied) as refused:
        request_release(requester, unsafe)
    assert [v["rule"] for v in refused.value.extra["violations"]] == ["security.safe_format"]
    assert ReleaseRequest.objects.count() == 0
    # and a release manager may still break the glass, recorded with the violations it overrode
    release = request_release(manager, unsafe, emergency=True, justification="the fix for an outage")
    assert release.status == ReleaseStatus.APPROVED
    decided()
    gate = selectors.gate_for(version=unsafe, environment=release.environment)
    assert gate.allowed and gate.status == "emergency" and gate.violations


def test_an_unacceptable_risk_model_is_never_released_even_in_an_emergency(request_release, manager, team, author):
    from tests.factories.registry import RegisteredModelFactory

    banned = RegisteredModelFactory(
        name="social-scoring", owner_team=team, risk_tier="unacceptable", data_categories=[]
    )
    version = ModelVersionFactory(model=banned, number=1, created_by=author)
    with pytest.raises(services.PolicyNotSatisfied, match="unacceptable"):
        request_release(manager, version, emergency=True)
    assert ReleaseRequest.objects.count() == 0


def test_a_high_risk_version_without_its_reports_waits_for_evidence_then_for_people(
    request_release, requester, reviewer, high_model, author, audit_mark
):
    from tests.factories.policies import bias_run, compliant_version, explain_run

    # given a high-risk version whose bias and explainability reports are not there yet
    version = compliant_version(high_model, number=2, created_by=author, evidence=False)
    release = request_release(requester, version, environment="production", change_reference="CHG-8")
    # then the request waits for evidence, naming it, and nobody can approve it yet
    assert release.status == ReleaseStatus.PENDING_EVIDENCE
    assert {m["kind"] for m in release.decision["missing_evidence"]} >= {"bias", "explainability"}
    with pytest.raises(Conflict, match="waits for evidence"):
        approve(reviewer, release)
    # when the reports arrive
    bias_run(version)
    explain_run(version)
    services.releases_reevaluate(version_ids=[version.pk], reason="new evidence")
    # then it waits for people
    assert status_of(release) == ReleaseStatus.PENDING_APPROVAL


# ---------------------------------------------------------------------------------------------
# The approval queue


def test_the_queue_shows_what_waits_for_me_and_not_my_own(
    request_release, requester, reviewer, officer, version, high_version
):
    low = request_release(requester, version)
    high = request_release(requester, high_version, environment="production", change_reference="CHG-6")
    # a reviewer sees both; the officer too
    assert {i.release.pk for i in selectors.approval_queue(actor=who(reviewer))} == {low.pk, high.pk}
    approve(reviewer, high)
    # once decided, it leaves the reviewer's queue; the officer still has the high-risk one
    assert [i.release.pk for i in selectors.approval_queue(actor=who(reviewer))] == [low.pk]
    assert high.pk in {i.release.pk for i in selectors.approval_queue(actor=who(officer))}
    # the requester, who holds no approving role, has nothing waiting
    assert selectors.approval_queue(actor=who(requester)) == []


def test_the_periodic_expiry_task_is_scheduled_and_safe_to_repeat(request_release, requester, version):
    from worker.schedule import beat_schedule
    from worker.tasks import releases as tasks

    release = request_release(requester, version)
    ReleaseRequest.objects.filter(pk=release.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert beat_schedule()["releases-expire"]["task"] == "releases.expire"
    assert tasks.expire() == 1
    assert tasks.expire() == 0
    assert status_of(release) == ReleaseStatus.EXPIRED


def test_a_policy_change_queues_a_re_evaluation_that_resets_approved_releases(
    request_release, requester, reviewer, officer, version, audit_mark
):
    from apps.jobs.events import job_kind
    from apps.jobs.models import Job
    from apps.policies import services as policies
    from tests.policies.test_api import GOOD
    from worker.runner import run_job

    # given an approved staging release whose gate is open
    release = request_release(requester, version)
    approve(reviewer, release)
    assert status_of(release) == ReleaseStatus.APPROVED
    # when a compliance officer binds a new pack to every model
    policies.policy_pack_create(actor=who(officer), name="loan-limits", source=GOOD)
    policies.policy_binding_create(actor=who(officer), pack_name="loan-limits")
    # then a re-evaluation job is queued for the workers, not done in the request
    queued = Job.objects.filter(kind=job_kind("policy.changed"), params__subscriber="releases", status="queued")
    assert queued.count() == 2  # one per change: the pack, then its binding
    assert status_of(release) == ReleaseStatus.APPROVED
    # when a worker runs them
    mark = audit_mark()
    outcomes = [run_job(job.pk) for job in queued.order_by("pk")]
    # then the release was judged on the new pack: back to pending, its approval void, the gate closed
    assert outcomes == ["succeeded", "succeeded"]
    assert status_of(release) == ReleaseStatus.PENDING_APPROVAL
    assert "release.reset" in mark.actions()
    assert Approval.objects.get(release=release).void
    release.refresh_from_db()
    assert "loan-limits" in [p["name"] for p in release.decision["packs"]]
    assert not selectors.gate_for(version=version, environment=release.environment).allowed
    job = Job.objects.filter(kind=job_kind("policy.changed"), params__subscriber="releases").order_by("-id").first()
    assert job.progress == 100


def test_an_unknown_environment_tells_a_stranger_nothing_of_the_version(
    make_user, requester, version, request_release, api_client_for, audit_mark
):
    # given a person without any role
    stranger = api_client_for(make_user())
    mark = audit_mark()
    body = {"model": version.model.name, "version": version.number, "environment": "nowhere", "justification": "x"}

    # when they name an existing version and an unknown environment, and then a version that does not exist
    existing = stranger.post("/api/v1/releases/", body, format="json")
    missing = stranger.post("/api/v1/releases/", {**body, "version": 99}, format="json")

    # then both answers are the same refusal, and the first is audited as denied
    assert (existing.status_code, missing.status_code) == (404, 404)
    assert existing.json()["code"] == missing.json()["code"] == "not_found"
    assert ("release.requested", "denied") in [(e.action, e.outcome) for e in mark.new()]
    # and the requester, who may see the version, is told the environment is unknown
    with pytest.raises(ValidationFailed, match="Unknown environment 'nowhere'"):
        request_release(requester, version, environment="nowhere")
