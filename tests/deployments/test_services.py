"""Deployment services: targets and their sealed credentials, starting a rollout, and what people do to it.

Each test runs the real services against the test database (SQLite by default, PostgreSQL with
DATABASE_URL) and reads what they wrote: rows, audit events, published events and queued jobs.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.errors import Conflict, Denied, InvalidTransition, ValidationFailed
from apps.deployments import services
from apps.deployments.choices import DeploymentState, Phase
from apps.deployments.models import Deployment, DeploymentTarget
from apps.jobs.events import job_kind
from apps.jobs.models import Job
from apps.releases.models import Approval, ReleaseRequest
from tests.deployments.conftest import who

pytestmark = pytest.mark.django_db

TOKEN = "kube-token-that-must-never-show"  # noqa: S105 - a test credential


def published(name: str) -> list[dict]:
    return [j.params["payload"] for j in Job.objects.filter(kind=job_kind(name)).order_by("id")]


def advance_jobs(deployment) -> int:
    return Job.objects.filter(kind=services.ADVANCE_JOB, target_id=str(deployment.public_id)).count()


# ---------------------------------------------------------------------------------------------
# Targets


def test_an_admin_adds_a_target_whose_credentials_are_sealed_and_never_shown(admin, staging, audit_mark):
    mark = audit_mark()
    # when an admin adds a Kubernetes target with a token
    target = services.target_create(
        actor=who(admin),
        name="gpu-eu",
        kind="kubernetes",
        environment="staging",
        settings={"server": "https://127.0.0.1:6443", "namespace": "models", "replicas": {"min": 1, "max": 3}},
        credentials={"token": TOKEN},
    )
    # then the row holds the token only encrypted, with a fingerprint people can compare
    row = DeploymentTarget.objects.get(pk=target.pk)
    assert TOKEN not in row.credentials_encrypted and row.credentials_set
    assert row.credentials_fingerprint.startswith("sha256:")
    assert services.credentials_of(row) == {"token": TOKEN}
    # and the audit trail says it is set, never what it is
    events = mark.new()
    assert [e.action for e in events] == ["deployment_target.created"]
    assert TOKEN not in str(events[0].after) and events[0].after["access_set"] is True


def test_a_setting_the_kind_does_not_take_is_refused_naming_the_valid_keys(admin, staging):
    with pytest.raises(ValidationFailed) as refused:
        services.target_create(
            actor=who(admin), name="lab", kind="local", environment="staging", settings={"stat_dir": "/tmp/x"}
        )
    assert "stat_dir" in refused.value.detail and "state_dir" in refused.value.detail
    with pytest.raises(ValidationFailed, match="Expected integer"):
        services.target_create(
            actor=who(admin), name="lab", kind="local", environment="staging", settings={"router_port": "80"}
        )
    with pytest.raises(ValidationFailed, match="kubernetes, sagemaker"):
        services.target_create(actor=who(admin), name="lab", kind="nomad", environment="staging")
    assert not DeploymentTarget.objects.exists()


def test_only_a_global_admin_manages_targets(make_user, team, staging):
    for role, scope in (("release_manager", None), ("admin", team)):
        person = make_user(role, team=scope)
        with pytest.raises(Denied):
            services.target_create(actor=who(person), name="lab", kind="local", environment="staging")


def test_an_update_replaces_credentials_only_when_given(admin, staging, audit_mark):
    target = services.target_create(
        actor=who(admin), name="k", kind="kubernetes", environment="staging", credentials={"token": TOKEN}
    )
    sealed = target.credentials_encrypted
    # when the description changes, the credentials stay
    services.target_update(actor=who(admin), target_id=target.public_id, description="EU GPU pool")
    target.refresh_from_db()
    assert target.credentials_encrypted == sealed and target.description == "EU GPU pool"
    # when new credentials are given, they replace the old ones
    mark = audit_mark()
    services.target_update(actor=who(admin), target_id=target.public_id, credentials={"token": "another"})
    target.refresh_from_db()
    assert services.credentials_of(target) == {"token": "another"}
    event = mark.new()[0]
    assert event.action == "deployment_target.updated" and set(event.after) == {"access_fingerprint"}
    assert "another" not in str(event.after) + str(event.before)


def test_a_target_with_an_active_deployment_is_not_deleted(admin, lab, release, start):
    deployment = start(release)
    with pytest.raises(Conflict, match="active deployment"):
        services.target_delete(actor=who(admin), target_id=lab.public_id)
    assert DeploymentTarget.objects.filter(pk=lab.pk).exists() and deployment.state == DeploymentState.PENDING


def test_an_unused_target_is_deleted_and_audited(admin, lab, audit_mark):
    mark = audit_mark()
    services.target_delete(actor=who(admin), target_id=lab.public_id)
    assert not DeploymentTarget.objects.exists()
    assert mark.actions() == ["deployment_target.deleted"]


# ---------------------------------------------------------------------------------------------
# Starting


def test_a_release_manager_starts_a_canary_of_an_approved_release(lab, release, start, audit_mark, version):
    mark = audit_mark()
    # when the release manager deploys the approved release to the staging target as a canary
    deployment = start(release, strategy="canary", reason="quarterly refresh")
    # then a pending rollout exists with the canary's default steps and thresholds
    assert deployment.state == DeploymentState.PENDING and deployment.phase == Phase.APPLY
    assert [s["weight"] for s in deployment.steps] == [10, 50]
    assert deployment.thresholds["min_requests"] == 20
    assert deployment.service == "churn" and deployment.replaces is None and deployment.fence == 0
    # and it is audited with the digest, published for the webhooks, and its first job is queued
    assert mark.actions() == ["deployment.started"]
    assert mark.new()[0].artifact_sha256 == version.sha256
    [event] = published("deployment.started")
    assert event["deployment"] == str(deployment.public_id) and event["target"] == "lab"
    assert event["digest"] == version.sha256 and event["environment"] == "staging"
    assert advance_jobs(deployment) == 1


def test_a_second_rollout_of_the_model_on_the_target_is_refused_while_one_is_active(
    lab, release, start, approve, version2
):
    first = start(release)
    with pytest.raises(services.ActiveDeploymentExists, match=str(first.public_id)):
        start(approve(version2))
    assert Deployment.objects.count() == 1


def test_steps_and_thresholds_are_checked(lab, release, start):
    with pytest.raises(ValidationFailed, match="never go down"):
        start(release, strategy="canary", steps=[{"weight": 50}, {"weight": 10}])
    with pytest.raises(ValidationFailed, match="one step at weight 100"):
        start(release, strategy="direct", steps=[{"weight": 50}])
    with pytest.raises(ValidationFailed, match="max_latency"):
        start(release, thresholds={"max_latency": 5})
    with pytest.raises(ValidationFailed, match="canary"):
        start(release, strategy="linear")
    with pytest.raises(ValidationFailed, match="lab"):
        start(release, target="elsewhere")
    with pytest.raises(Conflict, match="shadow needs a stable"):
        start(release, strategy="shadow")
    assert not Deployment.objects.exists()


def test_a_viewer_and_a_contributor_cannot_deploy(lab, release, start, viewer, requester):
    for person in (viewer, requester):
        with pytest.raises(Denied):
            start(release, actor=who(person))
    assert not Deployment.objects.exists()


# ---------------------------------------------------------------------------------------------
# Governance at the start: refused, audited, nothing created


def _refused(start, release, audit_mark, match: str, **kw) -> AuditEvent:
    mark = audit_mark()
    with pytest.raises(services.GovernanceRefused, match=match):
        start(release, **kw)
    assert not Deployment.objects.exists() and not Job.objects.filter(kind=services.ADVANCE_JOB).exists()
    [event] = mark.new()
    assert event.action == "deployment.refused" and event.outcome == "failed" and match in event.reason
    return event


def test_an_unapproved_release_is_refused_and_the_refusal_audited(
    lab, request_release, requester, version, start, audit_mark
):
    pending = request_release(requester, version)
    _refused(start, pending, audit_mark, "pending approval")


def test_a_release_for_another_environment_is_refused(admin, production, release, start, audit_mark):
    services.target_create(actor=who(admin), name="prod", kind="local", environment="production")
    # (the service names the targets serving staging when asked for another one; a target of production is refused)
    _refused(start, release, audit_mark, "serves production", target="prod")


def test_a_release_past_its_revalidation_date_is_refused(lab, release, start, audit_mark):
    ReleaseRequest.objects.filter(pk=release.pk).update(revalidate_at=timezone.now() - timedelta(days=1))
    _refused(start, release, audit_mark, "revalidation date")


def test_a_release_whose_approvals_were_voided_is_refused(lab, release, start, audit_mark):
    Approval.objects.filter(release=release).update(void=True, voided_at=timezone.now())
    _refused(start, release, audit_mark, "voided")


def test_a_version_whose_digest_is_not_the_approved_one_is_refused(lab, release, start, audit_mark, version):
    type(version).objects.filter(pk=version.pk).update(sha256="f" * 64)
    _refused(start, release, audit_mark, "not the approved digest")


def test_a_break_glass_release_deploys_flagged_without_a_stored_decision(admin, production, version, manager, start):
    services.target_create(actor=who(admin), name="prod", kind="local", environment="production")
    from apps.releases import services as releases

    emergency = releases.release_request_create(
        actor=who(manager),
        model_name=version.model.name,
        number=version.number,
        environment="production",
        justification="outage",
        change_reference="CHG-9",
        emergency=True,
    )
    deployment = start(emergency, target="prod")
    assert deployment.emergency and published("deployment.started")[0]["emergency"] is True


# ---------------------------------------------------------------------------------------------
# Halt, resume, roll back, undeploy


def _progressing(deployment, **fields):
    """The rollout as a worker leaves it mid-step (the engine's own records are tested in test_engine)."""
    values = {"state": DeploymentState.PROGRESSING, "phase": Phase.ANALYSE, "traffic": {"new": 100, "stable": None}}
    values.update(fields)
    Deployment.objects.filter(pk=deployment.pk).update(**values)
    deployment.refresh_from_db()
    return deployment


def test_halt_needs_a_reason_then_holds_a_first_rollout_as_it_is(lab, release, start, manager, audit_mark):
    deployment = _progressing(start(release))
    with pytest.raises(ValidationFailed, match="reason"):
        services.deployment_halt(actor=who(manager), deployment_id=deployment.public_id, reason=" ")
    mark = audit_mark()
    services.deployment_halt(actor=who(manager), deployment_id=deployment.public_id, reason="errors reported")
    deployment.refresh_from_db()
    # without a stable version there is nothing to send traffic back to: held as it is, nothing to apply
    assert deployment.state == DeploymentState.HALTED and deployment.converged
    assert deployment.stop_reason == "errors reported" and deployment.stopped_by_name == "max"
    assert mark.actions() == ["deployment.halted"]
    assert published("deployment.halted")[0]["reason"] == "errors reported"


def test_a_compliance_officer_may_halt_and_a_viewer_may_not(lab, release, start, officer, viewer):
    deployment = _progressing(start(release))
    with pytest.raises(Denied):
        services.deployment_halt(actor=who(viewer), deployment_id=deployment.public_id, reason="no")
    services.deployment_halt(actor=who(officer), deployment_id=deployment.public_id, reason="oversight")
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.HALTED
    with pytest.raises(Denied):  # resuming is the release manager's
        services.deployment_resume(actor=who(officer), deployment_id=deployment.public_id, reason="fine")


def _serving(deployment):
    Deployment.objects.filter(pk=deployment.pk).update(
        state=DeploymentState.SUCCEEDED, phase=Phase.DONE, traffic={"new": 100, "stable": None}
    )
    deployment.refresh_from_db()
    return deployment


def test_a_halt_with_a_stable_version_sends_traffic_back_at_once(
    lab, release, start, approve, version2, manager, audit_mark
):
    stable = _serving(start(release))
    canary = _progressing(start(approve(version2), strategy="canary"), traffic={"stable": 90, "new": 10})
    assert canary.replaces == stable
    Job.objects.filter(kind=services.ADVANCE_JOB).update(status="succeeded")  # the workers caught up
    services.deployment_halt(actor=who(manager), deployment_id=canary.public_id, reason="latency")
    canary.refresh_from_db()
    # the target must be brought back (stable 100 %, new 0 %): not converged, the job queued at once
    assert canary.state == DeploymentState.HALTED and not canary.converged
    assert canary.next_check_at <= timezone.now()
    assert Job.objects.filter(kind=services.ADVANCE_JOB, target_id=str(canary.public_id), status="queued").count() == 1


def test_resume_runs_a_halted_step_again_and_moves_a_paused_one_on(lab, release, start, manager, audit_mark):
    deployment = _progressing(start(release, strategy="canary"), step_index=0)
    services.deployment_halt(actor=who(manager), deployment_id=deployment.public_id, reason="look")
    mark = audit_mark()
    with pytest.raises(ValidationFailed):  # audited with the reason, like every other command
        services.deployment_resume(actor=who(manager), deployment_id=deployment.public_id, reason="  ")
    services.deployment_resume(actor=who(manager), deployment_id=deployment.public_id, reason="cause found")
    deployment.refresh_from_db()
    assert (deployment.state, deployment.phase, deployment.step_index) == (DeploymentState.PROGRESSING, Phase.APPLY, 0)
    assert mark.actions() == ["deployment.resumed"] and mark.new()[0].reason == "cause found"
    # a paused rollout (step 1 of 2 passed, waiting for a person) moves on to step 2
    Deployment.objects.filter(pk=deployment.pk).update(state=DeploymentState.PAUSED, phase=Phase.DONE)
    services.deployment_resume(actor=who(manager), deployment_id=deployment.public_id, reason="step 1 looks fine")
    deployment.refresh_from_db()
    assert (deployment.phase, deployment.step_index) == (Phase.APPLY, 1)
    with pytest.raises(InvalidTransition):
        services.deployment_resume(actor=who(manager), deployment_id=deployment.public_id, reason="again")


def test_a_rollback_before_anything_was_applied_is_immediate(lab, release, start, manager, audit_mark):
    deployment = start(release)
    mark = audit_mark()
    services.deployment_rollback(actor=who(manager), deployment_id=deployment.public_id, reason="wrong version")
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.ROLLED_BACK and deployment.converged
    assert mark.actions() == ["deployment.rollback_started", "deployment.rolled_back"]
    assert published("deployment.rolled_back")[0]["reason"] == "wrong version"


def test_a_rollback_of_an_applied_rollout_waits_for_the_worker(lab, release, start, manager):
    deployment = _progressing(start(release))
    with pytest.raises(ValidationFailed):
        services.deployment_rollback(actor=who(manager), deployment_id=deployment.public_id, reason="")
    services.deployment_rollback(actor=who(manager), deployment_id=deployment.public_id, reason="errors")
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.ROLLING_BACK and not deployment.converged
    with pytest.raises(InvalidTransition):
        services.deployment_rollback(actor=who(manager), deployment_id=deployment.public_id, reason="again")


def test_only_a_serving_deployment_is_undeployed(lab, release, start, manager, audit_mark):
    deployment = start(release)
    with pytest.raises(InvalidTransition, match="only a serving one"):
        services.deployment_undeploy(actor=who(manager), deployment_id=deployment.public_id, reason="done")
    _serving(deployment)
    mark = audit_mark()
    services.deployment_undeploy(actor=who(manager), deployment_id=deployment.public_id, reason="retired")
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.UNDEPLOYED and not deployment.converged
    assert mark.actions() == ["deployment.undeployed"]


def test_a_serving_deployment_rolled_back_gives_the_version_it_replaced_back_its_traffic(
    lab, release, start, approve, version2, manager, audit_mark
):
    # given version 1 superseded by version 2, which serves
    v1 = _serving(start(release))
    v2 = start(approve(version2))
    Deployment.objects.filter(pk=v1.pk).update(state=DeploymentState.SUPERSEDED)
    v2 = _serving(v2)
    assert v2.replaces_id == v1.pk
    # when a person rolls version 2 back
    services.deployment_rollback(actor=who(manager), deployment_id=v2.public_id, reason="regression")
    v2.refresh_from_db()
    assert v2.state == DeploymentState.ROLLING_BACK and not v2.converged
    # and the worker has brought the target back (its records, under the fence it took)
    taken = services.rollout_take(deployment_id=v2.pk)
    mark = audit_mark()
    traffic = {"stable": 100, "new": None, "shadow": False}
    assert services.rollout_converged(deployment_id=v2.pk, fence=taken.fence, traffic=traffic)
    # then version 2 is rolled back and version 1 serves again
    v1.refresh_from_db()
    v2.refresh_from_db()
    assert (v1.state, v2.state) == (DeploymentState.SUCCEEDED, DeploymentState.ROLLED_BACK)
    assert mark.actions() == ["deployment.restored", "deployment.rolled_back"]
    assert published("deployment.rolled_back")[-1]["deployment"] == str(v2.public_id)
