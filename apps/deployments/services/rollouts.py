"""What the rollout's worker records: each under the deployment's row lock and the fence it took.

A worker *takes* a rollout (``rollout_take``: the fence grows by one and is committed), works without
holding any lock (builds the plan, re-checks governance, calls the target), then records what happened
through one of these services, naming the fence it took. A record whose fence is no longer the
deployment's (another worker took the rollout since), or whose rollout is no longer where the record
expects it (a person halted or rolled it back meanwhile), changes nothing and returns False: the worker
stops. Each state change is audited in its transaction and publishes its ``deployment.*`` event there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.audit import services as audit
from apps.audit.choices import Outcome

from ..choices import DeploymentState, Phase, StepOutcome
from ..models import Deployment, DeploymentStep
from ..rollout import NEXT, PAUSE_PERSON, PAUSE_TIMED, PROMOTE
from .common import SYSTEM, _close_step, _emit, _locked, _running_step
from .deployments import _begin_rollback

MOVING = (DeploymentState.PENDING, DeploymentState.PROGRESSING)


@dataclass(frozen=True)
class Taken:
    """A worker's hold on a rollout: the deployment as it was read under the lock, and the fence it took."""

    deployment: Deployment
    fence: int


def _held(deployment_id: int, fence: int, *, phases: tuple[str, ...] = (), states: tuple[str, ...] = MOVING):
    """The deployment, locked, if ``fence`` still holds it in one of ``states`` (and ``phases``); else None."""
    deployment = _locked(deployment_id, by_pk=True)
    if deployment.fence != fence or deployment.state not in states:
        return None
    if phases and deployment.phase not in phases:
        return None
    return deployment


def _service_fence(deployment_id: int) -> int:
    """Lock every deployment of this deployment's service on its target, in id order, and return the highest
    fence any of them took.

    The target keeps one fence per service, whichever deployment applied it (the router's state, the
    ``<service>-assay-plan`` ConfigMap, the endpoint's tag), so fences are numbered per service: a new
    rollout continues above its predecessors' (else its first applies were refused as stale until its own
    count caught up), and two deployments of one service never hold the same fence. Locking the service's
    rows in one order makes two takes of one service wait for each other, never for each other's locks.
    """
    row = Deployment.objects.filter(pk=deployment_id).values("target_id", "service").first()
    if row is None:
        return 0
    fences = (
        Deployment.objects.select_for_update()
        .filter(target_id=row["target_id"], service=row["service"])
        .order_by("pk")
        .values_list("fence", flat=True)
    )
    return max(fences, default=0)


@transaction.atomic(durable=True)
def rollout_take(*, deployment_id: int) -> Taken | None:
    """Take the rollout for this worker: its fence becomes one above the highest its service ever took on
    the target (``_service_fence``), committed before any target is called.

    None when there is nothing to do (a finished deployment whose target is as its state asks). Writes no
    audit event: taking over is bookkeeping; what the worker then does is audited.
    """
    highest = _service_fence(deployment_id)
    deployment = _locked(deployment_id, by_pk=True)
    if deployment.converged and deployment.state not in MOVING:
        if deployment.next_check_at is not None:
            deployment.next_check_at = None
            deployment.save(update_fields=["next_check_at", "updated_at"])
        return None
    deployment.fence = max(highest, deployment.fence) + 1
    deployment.save(update_fields=["fence", "updated_at"])
    return Taken(deployment=deployment, fence=deployment.fence)


def _seconds(name: str) -> float:
    return float(getattr(settings, name))


@transaction.atomic(durable=True)
def rollout_applied(*, deployment_id: int, fence: int, traffic: dict) -> bool:
    """The target runs the current step's traffic (or, promoting, the new version alone). Audited
    ``deployment.step_applied``, or ``deployment.succeeded`` (publishing ``deployment.succeeded``; the version it
    replaced is ``superseded``)."""
    deployment = _held(deployment_id, fence, phases=(Phase.APPLY, Phase.PROMOTE))
    if deployment is None:
        return False
    now = timezone.now()
    deployment.traffic = traffic
    if deployment.phase == Phase.PROMOTE:
        return _succeed(deployment, now)
    before = deployment.state
    step = deployment.steps[deployment.step_index]
    deployment.state = DeploymentState.PROGRESSING
    deployment.phase = Phase.READY
    deployment.ready_deadline = now + timedelta(seconds=_seconds("ASSAY_DEPLOY_READY_TIMEOUT_SECONDS"))
    deployment.next_check_at = now + timedelta(seconds=_seconds("ASSAY_DEPLOY_POLL_SECONDS"))
    deployment.message = f"step {deployment.step_index + 1} of {len(deployment.steps)} applied; waiting for readiness"
    deployment.save()
    DeploymentStep.objects.create(
        deployment=deployment,
        index=deployment.step_index,
        weight=traffic.get("new") or 0,
        shadow=bool(traffic.get("shadow")),
        started_at=now,
    )
    audit.record(
        action="deployment.step_applied",
        actor=SYSTEM,
        target=deployment,
        before={"state": before},
        after={"state": deployment.state, "step": deployment.step_index, "traffic": traffic, "planned": step},
        artifact_sha256=deployment.version.sha256,
    )
    return True


def _succeed(deployment: Deployment, now: datetime) -> bool:
    stable = deployment.replaces
    if stable is not None and stable.state == DeploymentState.SUCCEEDED:
        stable = Deployment.objects.select_for_update().get(pk=stable.pk)
        stable.state = DeploymentState.SUPERSEDED
        stable.finished_at = stable.finished_at or now
        stable.message = f"superseded by {deployment.public_id}"
        stable.save()
        audit.record(
            action="deployment.superseded",
            actor=SYSTEM,
            target=stable,
            related=deployment,
            before={"state": DeploymentState.SUCCEEDED},
            after={"state": stable.state},
        )
    deployment.state = DeploymentState.SUCCEEDED
    deployment.phase = Phase.DONE
    deployment.next_check_at = None
    deployment.finished_at = now
    deployment.message = "serving all traffic"
    deployment.save()
    audit.record(
        action="deployment.succeeded",
        actor=SYSTEM,
        target=deployment,
        before={"state": DeploymentState.PROGRESSING},
        after={"state": deployment.state, "traffic": deployment.traffic},
        artifact_sha256=deployment.version.sha256,
    )
    _emit("deployment.succeeded", deployment)
    return True


@transaction.atomic(durable=True)
def rollout_ready(*, deployment_id: int, fence: int, baseline: dict) -> bool:
    """The new version is ready: the analysis window starts from the counters in ``baseline``. Audited
    ``deployment.step_ready``."""
    deployment = _held(deployment_id, fence, phases=(Phase.READY,))
    if deployment is None:
        return False
    now = timezone.now()
    analysis = int(deployment.steps[deployment.step_index].get("analysis", 0))
    deployment.phase = Phase.ANALYSE
    deployment.baseline = baseline
    deployment.analysis_until = now + timedelta(seconds=analysis)
    deployment.next_check_at = deployment.analysis_until
    deployment.message = f"step {deployment.step_index + 1} ready; analysing health for {analysis} s"
    deployment.save()
    step = _running_step(deployment)
    if step is not None:
        step.ready_at = now
        step.save(update_fields=["ready_at"])
    audit.record(
        action="deployment.step_ready",
        actor=SYSTEM,
        target=deployment,
        after={"step": deployment.step_index, "baseline": baseline},
    )
    return True


@transaction.atomic(durable=True)
def rollout_passed(*, deployment_id: int, fence: int, figures: dict, then: str) -> bool:
    """The step passed on ``figures`` (or a timed pause ended); ``then`` says what follows: the next step,
    a timed pause, a person (``paused``) or the promotion. Audited ``deployment.step_completed`` (publishing
    ``deployment.step_completed``) and, when a person must resume it, ``deployment.paused`` (publishing it)."""
    deployment = _held(deployment_id, fence, phases=(Phase.ANALYSE, Phase.PAUSE), states=(DeploymentState.PROGRESSING,))
    if deployment is None:
        return False
    now = timezone.now()
    index = deployment.step_index
    if deployment.phase == Phase.ANALYSE:
        _close_step(deployment, outcome=StepOutcome.PASSED, message="healthy", figures=figures)
        audit.record(
            action="deployment.step_completed",
            actor=SYSTEM,
            target=deployment,
            after={"step": index, "figures": figures, "thresholds": deployment.thresholds},
        )
        _emit("deployment.step_completed", deployment, figures=figures)
    if then == PAUSE_TIMED:
        pause = int(deployment.steps[index]["pause"])
        deployment.phase = Phase.PAUSE
        deployment.pause_until = now + timedelta(seconds=pause)
        deployment.next_check_at = deployment.pause_until
        deployment.message = f"step {index + 1} passed; pausing {pause} s"
    elif then == PAUSE_PERSON:
        deployment.state = DeploymentState.PAUSED
        deployment.phase = Phase.DONE if index + 1 < len(deployment.steps) else Phase.PROMOTE
        deployment.next_check_at = None
        deployment.message = f"step {index + 1} passed; waiting for a person to resume"
    elif then == NEXT:
        deployment.step_index = index + 1
        deployment.phase = Phase.APPLY
        deployment.next_check_at = now
        deployment.message = f"step {index + 1} passed"
    elif then == PROMOTE:
        deployment.phase = Phase.PROMOTE
        deployment.next_check_at = now
        deployment.message = "every step passed; promoting"
    else:
        raise ValueError(f"unknown continuation {then!r}")
    deployment.save()
    if then == PAUSE_PERSON:
        audit.record(action="deployment.paused", actor=SYSTEM, target=deployment, after={"step": index})
        _emit("deployment.paused", deployment)
    return True


@transaction.atomic(durable=True)
def rollout_unjudged(*, deployment_id: int, fence: int, figures: dict, reason: str) -> bool:
    """Too little traffic to judge the step: it pauses for a person, who resumes (go on) or rolls back.
    Audited ``deployment.paused``; publishes ``deployment.paused``."""
    deployment = _held(deployment_id, fence, phases=(Phase.ANALYSE,), states=(DeploymentState.PROGRESSING,))
    if deployment is None:
        return False
    _close_step(deployment, outcome=StepOutcome.UNJUDGED, message=reason, figures=figures)
    deployment.state = DeploymentState.PAUSED
    deployment.next_check_at = None
    deployment.message = f"paused: {reason}"
    deployment.save()
    audit.record(
        action="deployment.paused",
        actor=SYSTEM,
        target=deployment,
        after={"step": deployment.step_index, "figures": figures},
        reason=reason,
    )
    _emit("deployment.paused", deployment, reason=reason)
    return True


@transaction.atomic(durable=True)
def rollout_rollback(*, deployment_id: int, fence: int, reason: str, figures: dict | None = None) -> bool:
    """Roll back on the engine's own judgement (not ready in time, a threshold crossed, a wrong digest).
    Audited ``deployment.rollback_started`` with the figures, by the system."""
    deployment = _held(deployment_id, fence, states=(DeploymentState.PROGRESSING,))
    if deployment is None:
        return False
    _begin_rollback(deployment, actor=SYSTEM, reason=f"automatic: {reason}", figures=figures)
    return True


@transaction.atomic(durable=True)
def rollout_refused(*, deployment_id: int, fence: int, reason: str) -> bool:
    """Governance refused the next apply: nothing was applied; the deployment fails. Audited
    ``deployment.refused`` (the reason) and ``deployment.failed``; publishes ``deployment.failed``. Traffic
    already applied is then taken back to the stable version (the target converges in the next move)."""
    deployment = _held(deployment_id, fence)
    if deployment is None:
        return False
    _close_step(deployment, outcome=StepOutcome.REFUSED, message=reason)
    audit.record(
        action="deployment.refused",
        actor=SYSTEM,
        outcome=Outcome.FAILED,
        target=deployment,
        after={"step": deployment.step_index, "phase": deployment.phase},
        reason=reason,
        artifact_sha256=deployment.version.sha256,
    )
    _fail(deployment, f"refused: {reason}")
    return True


def _fail(deployment: Deployment, message: str) -> None:
    before = deployment.state
    deployment.state = DeploymentState.FAILED
    deployment.converged = not deployment.traffic
    deployment.next_check_at = None if deployment.converged else timezone.now()
    deployment.finished_at = timezone.now()
    deployment.message = message[:2000]
    deployment.save()
    audit.record(
        action="deployment.failed",
        actor=SYSTEM,
        outcome=Outcome.FAILED,
        target=deployment,
        before={"state": before},
        after={"state": deployment.state},
        reason=message,
    )
    _emit("deployment.failed", deployment, reason=message)


@transaction.atomic(durable=True)
def rollout_failed(*, deployment_id: int, fence: int, error: str) -> bool:
    """The target refused the step's apply for good (the driver's message). Audited ``deployment.failed``;
    publishes ``deployment.failed``."""
    deployment = _held(deployment_id, fence)
    if deployment is None:
        return False
    _close_step(deployment, outcome=StepOutcome.FAILED, message=error)
    _fail(deployment, f"the target refused: {error}")
    return True


CONVERGED_ACTIONS = {
    DeploymentState.HALTED: "deployment.halt_applied",
    DeploymentState.ROLLING_BACK: "deployment.rolled_back",
    DeploymentState.FAILED: "deployment.traffic_restored",
    DeploymentState.UNDEPLOYED: "deployment.removed",
}


@transaction.atomic(durable=True)
def rollout_converged(*, deployment_id: int, fence: int, traffic: dict) -> bool:
    """The target runs what the state asks for (a halt's, rollback's, failure's or undeploy's traffic; ``{}``:
    nothing). Audited ``deployment.halt_applied``, ``deployment.rolled_back`` (publishing it; the version it
    had replaced serves again), ``deployment.traffic_restored`` or ``deployment.removed``."""
    deployment = _held(deployment_id, fence, states=tuple(CONVERGED_ACTIONS))
    if deployment is None or deployment.converged:
        return False
    now = timezone.now()
    before = {"state": deployment.state, "traffic": deployment.traffic}
    action = CONVERGED_ACTIONS[deployment.state]
    deployment.traffic = traffic
    deployment.converged = True
    deployment.next_check_at = None
    if deployment.state == DeploymentState.ROLLING_BACK:
        deployment.state = DeploymentState.ROLLED_BACK
        deployment.finished_at = now
        deployment.message = f"rolled back: {deployment.stop_reason}"
        stable = deployment.replaces
        if stable is not None and stable.state == DeploymentState.SUPERSEDED:
            deployment.save()  # no longer active before the stable one serves again
            stable = Deployment.objects.select_for_update().get(pk=stable.pk)
            stable.state = DeploymentState.SUCCEEDED
            stable.message = f"serving again: {deployment.public_id} was rolled back"
            stable.save()
            audit.record(
                action="deployment.restored",
                actor=SYSTEM,
                target=stable,
                related=deployment,
                before={"state": DeploymentState.SUPERSEDED},
                after={"state": stable.state},
            )
    elif deployment.state == DeploymentState.HALTED:
        deployment.message = "halted: all live traffic on the stable version"
    else:
        deployment.message = f"{deployment.message} (target converged)"[:2000]
    deployment.save()
    audit.record(
        action=action,
        actor=SYSTEM,
        target=deployment,
        before=before,
        after={"state": deployment.state, "traffic": traffic},
        reason=deployment.stop_reason,
    )
    if action == "deployment.rolled_back":
        _emit("deployment.rolled_back", deployment, reason=deployment.stop_reason)
    return True
