"""The rollout engine's governance re-check and fencing, run through the real job runner.

``deployments.advance`` jobs are run by ``worker.runner.run_job`` in this process, as a worker runs them;
the governance re-check reads the database and re-hashes the artifact's bytes from this test's storage
(``worker.fetch.fetch_rehashed``). A refusal happens before any driver is built, so these tests need no
target: what they check is that nothing was applied (no traffic recorded, no step applied). The fencing
tests call the services a worker calls, with the fences two workers would hold.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.storage import get_storage
from apps.deployments import services
from apps.deployments.choices import DeploymentState, Phase
from apps.deployments.models import Deployment, DeploymentStep
from apps.jobs.events import job_kind
from apps.jobs.models import Job, JobStatus
from apps.releases import services as releases
from apps.releases.models import Approval, ReleaseRequest
from tests.deployments.conftest import who
from worker.runner import run_job

pytestmark = pytest.mark.django_db


def run_advance(deployment) -> str:
    job = Job.objects.filter(
        kind=services.ADVANCE_JOB, target_id=str(deployment.public_id), status=JobStatus.QUEUED
    ).latest("id")
    return run_job(job.pk)


def refused_and_nothing_applied(deployment, audit_mark_obj, reason: str) -> None:
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.FAILED and deployment.traffic == {}
    assert deployment.converged and reason in deployment.message
    assert not DeploymentStep.objects.filter(deployment=deployment).exclude(outcome="refused").exists()
    actions = audit_mark_obj.actions(target_type="deployment")
    assert actions == ["deployment.refused", "deployment.failed"], actions
    refusal = audit_mark_obj.new(action="deployment.refused")[0]
    assert reason in refusal.reason and refusal.outcome == "failed"
    failed = [j.params["payload"] for j in Job.objects.filter(kind=job_kind("deployment.failed"))]
    assert [p["deployment"] for p in failed] == [str(deployment.public_id)]


def test_a_release_cancelled_after_the_start_is_refused_at_the_apply(lab, release, start, manager, audit_mark):
    # given a rollout started on an approved release, which is then withdrawn before a worker runs it
    deployment = start(release)
    releases.release_cancel(actor=who(manager), release_id=release.public_id, reason="withdrawn")
    mark = audit_mark()
    # when the worker runs the rollout's job
    assert run_advance(deployment) == "succeeded"
    # then it refused, audited why, published deployment.failed, and applied nothing
    refused_and_nothing_applied(deployment, mark, "cancelled, not approved")


def test_approvals_voided_after_the_start_are_refused_at_the_apply(lab, release, start, audit_mark):
    deployment = start(release)
    Approval.objects.filter(release=release).update(void=True, voided_at=timezone.now())
    mark = audit_mark()
    run_advance(deployment)
    refused_and_nothing_applied(deployment, mark, "voided")


def test_an_approval_past_revalidation_is_refused_at_the_apply(lab, release, start, audit_mark):
    deployment = start(release)
    ReleaseRequest.objects.filter(pk=release.pk).update(revalidate_at=timezone.now() - timedelta(minutes=1))
    mark = audit_mark()
    run_advance(deployment)
    refused_and_nothing_applied(deployment, mark, "revalidation date")


def test_artifact_bytes_changed_in_storage_are_refused_at_the_apply(lab, release, start, audit_mark, version):
    # given the stored artifact's bytes replaced after the approval (the row still names the approved digest)
    deployment = start(release)
    path = get_storage().local_path(version.artifact_uri)
    path.write_bytes(b"not the approved bytes")
    mark = audit_mark()
    # when the worker re-checks before the apply, it re-hashes the bytes and refuses
    run_advance(deployment)
    refused_and_nothing_applied(deployment, mark, f"not the expected {version.sha256}")


def test_a_missing_driver_fails_the_rollout_with_the_reason(admin, release, start, audit_mark):
    """Governance passes (the bytes re-hash to the approved digest), but this installation has no driver for
    the target's kind (a kind whose module is not installed here): the apply cannot happen, and the rollout
    fails saying so, with nothing applied."""
    import importlib.util

    from worker.drivers.registry import MODULES

    missing = [kind for kind, module in MODULES.items() if importlib.util.find_spec(module) is None]
    if not missing:
        pytest.skip("every target kind's driver is installed here")
    services.target_create(actor=who(admin), name="remote", kind=missing[0], environment="staging")
    deployment = start(release, target="remote")
    mark = audit_mark()
    run_advance(deployment)
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.FAILED and "driver is not installed" in deployment.message
    assert deployment.traffic == {} and mark.actions(target_type="deployment") == ["deployment.failed"]


# ---------------------------------------------------------------------------------------------
# Fencing


def test_a_stale_fence_changes_nothing(lab, release, start):
    # given a rollout taken by worker A (fence 1), then taken over by worker B (fence 2)
    deployment = start(release)
    a = services.rollout_take(deployment_id=deployment.pk)
    b = services.rollout_take(deployment_id=deployment.pk)
    assert (a.fence, b.fence) == (1, 2)
    traffic = {"stable": None, "new": 100, "shadow": False}
    # when A records its apply, it changes nothing
    assert services.rollout_applied(deployment_id=deployment.pk, fence=a.fence, traffic=traffic) is False
    assert services.rollout_wait(deployment_id=deployment.pk, fence=a.fence, at=timezone.now()) is False
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.PENDING and deployment.traffic == {} and not deployment.timeline.exists()
    # while B's record is taken
    assert services.rollout_applied(deployment_id=deployment.pk, fence=b.fence, traffic=traffic) is True
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.PROGRESSING and deployment.phase == Phase.READY
    assert deployment.traffic == traffic and deployment.timeline.count() == 1


def test_fences_are_numbered_per_service_so_a_new_rollout_continues_above_its_predecessor(
    lab, release, start, approve, version2
):
    # given version 1's rollout, taken by three workers in turn (fence 3 on the target), then serving
    first = start(release)
    for _ in range(3):
        services.rollout_take(deployment_id=first.pk)
    Deployment.objects.filter(pk=first.pk).update(
        state=DeploymentState.SUCCEEDED, phase=Phase.DONE, traffic={"stable": None, "new": 100, "shadow": False}
    )
    # when version 2's rollout of the same service is taken
    second = start(approve(version2))
    taken = services.rollout_take(deployment_id=second.pk)
    # then its fence is above every fence version 1 took: the target, which keeps one fence per service, takes
    # its first apply instead of refusing it as stale
    assert taken.fence == 4
    assert services.rollout_take(deployment_id=second.pk).fence == 5


def test_of_two_workers_recording_the_same_move_one_wins(lab, release, start, audit_mark):
    deployment = start(release)
    first = services.rollout_take(deployment_id=deployment.pk)
    traffic = {"stable": None, "new": 100, "shadow": False}
    mark = audit_mark()
    # the same fence twice (a job re-run after its worker died mid-record): the second finds the move made
    assert services.rollout_applied(deployment_id=deployment.pk, fence=first.fence, traffic=traffic) is True
    assert services.rollout_applied(deployment_id=deployment.pk, fence=first.fence, traffic=traffic) is False
    assert mark.actions() == ["deployment.step_applied"]
    assert deployment.timeline.count() == 1


def test_a_person_s_halt_wins_over_a_worker_s_late_record(lab, release, start, manager):
    deployment = start(release)
    taken = services.rollout_take(deployment_id=deployment.pk)
    services.deployment_halt(actor=who(manager), deployment_id=deployment.public_id, reason="stop")
    # the worker that took the rollout before the halt records its apply: refused, the halt stands
    assert services.rollout_applied(deployment_id=deployment.pk, fence=taken.fence, traffic={"new": 100}) is False
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.HALTED


def test_the_tick_queues_due_rollouts_once(lab, release, start):
    deployment = start(release)
    # the start queued the first job; the tick adds none while it waits
    assert services.deployments_enqueue_due() == []
    Job.objects.filter(kind=services.ADVANCE_JOB).update(status=JobStatus.SUCCEEDED)
    assert services.deployments_enqueue_due() == [deployment.pk]
    assert services.deployments_enqueue_due() == []
    # a finished deployment whose target is as it asks is no longer looked at
    Deployment.objects.filter(pk=deployment.pk).update(next_check_at=None)
    Job.objects.filter(kind=services.ADVANCE_JOB).update(status=JobStatus.SUCCEEDED)
    assert services.deployments_enqueue_due() == []
