"""The rollout engine: one short job moves one rollout a few steps, and never waits on a target.

``advance(deployment_id)``:

1. takes the rollout (``rollout_take``: its fence grows by one, committed) — a worker that took it
   before and is still at work now records nothing, and the driver refuses its plans (``StaleFence``);
2. builds the driver for the target when it first needs it (``worker.drivers.registry.driver_for``:
   credentials decrypted here; a governance refusal needs none);
3. if the target must converge (a halt, a rollback, a failure, an undeploy), applies that plan or removes
   the service, and records it;
4. else, while the rollout progresses, asks ``apps.deployments.rollout.decide`` what to do from the
   rollout's state and, when readiness or health is to be judged, what the target reports; and does it:
   apply the step's traffic (after the governance re-check, immediately before the apply), record
   readiness, a passed step, a pause, or an automatic rollback, or record when to look again.

Nothing here holds a database lock while the target is called: every record is a service of its own
(``apps.deployments.services.rollouts``) that checks the fence. Readiness and analysis are later jobs:
the rollout's ``next_check_at`` says when, and the periodic ``deployments.tick`` queues them. A worker
killed mid-move leaves the job's lease to expire; the sweeper runs it again, which takes the rollout
with a new fence and goes on from what the database says (an apply is idempotent).
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from apps.deployments import governance, planning, rollout
from apps.deployments import services as deployments
from apps.deployments.choices import DeploymentState, Phase
from apps.deployments.models import Deployment, DeploymentTarget
from apps.deployments.plans import DigestMismatch, DriverError, StaleFence
from apps.registry.models import ModelVersion
from apps.releases.models import ReleaseRequest
from apps.releases.selectors import approvals_named
from worker.drivers.registry import driver_for
from worker.fetch import Unfetchable, fetch_rehashed

MAX_MOVES = 8  # moves one job makes before it hands the rollout back to the tick
RETRY_SECONDS = 10.0  # a target that did not answer is tried again after this long
AGAIN, STOP = "again", "stop"
MOVING = (DeploymentState.PENDING, DeploymentState.PROGRESSING)


def _fresh(deployment_id: int) -> Deployment:
    return Deployment.objects.select_related(
        "release", "version", "model", "target", "environment", "replaces", "replaces__version", "replaces__release"
    ).get(pk=deployment_id)


class Drivers:
    """The target's driver, built on first use (``NoDriver``, a ``DriverError``, when there is none)."""

    def __init__(self, target: DeploymentTarget) -> None:
        self.target = target
        self._driver = None

    def get(self):
        if self._driver is None:
            self._driver = driver_for(self.target)
        return self._driver


def advance(deployment_id: int, report) -> dict:
    """Move the rollout as far as it can go now; what was done, for the job's result."""
    taken = deployments.rollout_take(deployment_id=deployment_id)
    if taken is None:
        return {"outcome": "idle"}
    fence = taken.fence
    report(5, f"took the rollout (fence {fence})")
    moves: list[str] = []
    drivers = Drivers(taken.deployment.target)
    for n in range(MAX_MOVES):
        deployment = _fresh(deployment_id)
        if deployment.fence != fence:
            moves.append("another worker took the rollout")
            break
        if not deployment.converged:
            moves.append(_converge(deployment, fence, drivers))
            break
        if deployment.state not in MOVING:
            break
        move, go_on = _progress(deployment, fence, drivers)
        moves.append(move)
        report(10 + 10 * n, move)
        if go_on != AGAIN:
            break
    return {"fence": fence, "moves": moves}


def refusal(deployment: Deployment) -> str:
    """Governance, re-read now, immediately before an apply: the release, its approvals, the gate, the digest,
    and the artifact's bytes re-hashed (``fetch_rehashed``). ``""`` when the apply may go ahead."""
    release = (
        ReleaseRequest.objects.select_related("environment", "version", "model")
        .prefetch_related(approvals_named())  # the gate names the approvers
        .get(pk=deployment.release_id)
    )
    version = ModelVersion.objects.select_related("model").get(pk=deployment.version_id)
    target = DeploymentTarget.objects.select_related("environment").get(pk=deployment.target_id)
    reason = governance.refusal(release=release, version=version, target=target, now=timezone.now())
    if reason:
        return reason
    if not target.enabled:
        return f"target {target.name} is disabled"
    with tempfile.TemporaryDirectory(prefix="assay-deploy-") as folder:
        try:
            fetch_rehashed(
                version.artifact_uri,
                is_reference=version.artifact_is_reference,
                target=Path(folder) / "artifact",
                what="approved artifact",
                expected_sha256=governance.approved_digest(release),
                limit=int(settings.ASSAY_MAX_UPLOAD_BYTES),
                size_hint=version.size,
            )
        except Unfetchable as exc:
            return f"the artifact's bytes do not check out: {exc}"
    return ""


def _apply(deployment: Deployment, fence: int, drivers: Drivers) -> tuple[str, str]:
    traffic = planning.step_traffic(deployment)
    refused = refusal(deployment)
    if refused:
        deployments.rollout_refused(deployment_id=deployment.pk, fence=fence, reason=refused)
        return f"refused: {refused}", AGAIN
    plan = planning.plan_for(deployment, traffic, fence)
    try:
        drivers.get().apply(plan)
    except StaleFence:
        return "stale fence: another worker applied a newer plan", STOP
    except DigestMismatch as exc:
        deployments.rollout_refused(deployment_id=deployment.pk, fence=fence, reason=str(exc))
        return f"refused by the target: {exc}", AGAIN
    except DriverError as exc:
        deployments.rollout_failed(deployment_id=deployment.pk, fence=fence, error=str(exc))
        return f"failed: {exc}", AGAIN
    if not deployments.rollout_applied(deployment_id=deployment.pk, fence=fence, traffic=traffic):
        return "applied, but the rollout moved meanwhile", STOP
    return f"applied {traffic}", AGAIN


def _progress(deployment: Deployment, fence: int, drivers: Drivers) -> tuple[str, str]:
    now = timezone.now()
    view = planning.view(deployment, now=now)
    observed = None
    looking = deployment.phase == Phase.READY or (
        deployment.phase == Phase.ANALYSE and (deployment.analysis_until is None or now >= deployment.analysis_until)
    )
    if looking:
        try:
            observed = drivers.get().observe(deployment.service)
        except DriverError as exc:
            at = now + timedelta(seconds=view.poll_seconds)
            deployments.rollout_wait(
                deployment_id=deployment.pk, fence=fence, at=at, message=f"could not read the target: {exc}"
            )
            return f"target unreadable: {exc}", STOP
    action = rollout.decide(view, observed)
    ids = {"deployment_id": deployment.pk, "fence": fence}
    if action.kind == rollout.APPLY:
        return _apply(deployment, fence, drivers)
    if action.kind == rollout.WAIT:
        deployments.rollout_wait(**ids, at=action.at)
        return f"waiting until {action.at:%H:%M:%S}", STOP
    if action.kind == rollout.READY:
        done = deployments.rollout_ready(**ids, baseline=action.baseline)
    elif action.kind == rollout.PASSED:
        done = deployments.rollout_passed(**ids, figures=action.figures, then=action.then)
    elif action.kind == rollout.ROLLBACK:
        done = deployments.rollout_rollback(**ids, reason=action.reason, figures=action.figures or None)
    elif action.kind == rollout.UNJUDGED:
        deployments.rollout_unjudged(**ids, figures=action.figures, reason=action.reason)
        return f"paused: {action.reason}", STOP
    else:  # pragma: no cover - decide returns only the kinds above
        raise ValueError(f"unknown action {action.kind!r}")
    return (f"{action.kind} {action.reason}".strip(), AGAIN if done else STOP)


def _converge(deployment: Deployment, fence: int, drivers: Drivers) -> str:
    traffic = planning.converge_traffic(deployment)
    try:
        if traffic is None:
            drivers.get().remove(deployment.service, fence)
        elif traffic != deployment.traffic or deployment.state != DeploymentState.HALTED:
            drivers.get().apply(planning.plan_for(deployment, traffic, fence))
    except StaleFence:
        return "stale fence: another worker applied a newer plan"
    except DriverError as exc:
        at = timezone.now() + timedelta(seconds=RETRY_SECONDS)
        deployments.rollout_wait(
            deployment_id=deployment.pk, fence=fence, at=at, message=f"could not bring the target back yet: {exc}"
        )
        return f"retrying: {exc}"
    deployments.rollout_converged(deployment_id=deployment.pk, fence=fence, traffic=traffic or {})
    return f"converged to {traffic or 'nothing'}"
