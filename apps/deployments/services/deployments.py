"""What people do to a deployment once started (``starting``): halt, resume, roll back, undeploy.

Each runs in one durable transaction under the deployment's row lock, checks
``rbac.require``, guards the transition, records its audit event and publishes its event in that
transaction, and queues the rollout's job (``deployments.advance``) at once, so a worker acts within
seconds. Nothing here talks to a target: the workers do (``worker/rollouts.py``).

Halt: the rollout stops advancing. Where a stable version serves beside the new one, live traffic goes
back to it (all of it) and the new version stays up at 0 % (or stops receiving the mirrored copy), so
that resuming continues from the step it was halted in; without a stable version the target is held as
it is. Resume: a halted rollout runs its current step again (apply, readiness, analysis); a paused one
moves past the step it paused after. Rollback: all traffic to the stable version and the new version
removed (without a stable version, the service is removed). Undeploy: a serving deployment's service is
removed from its target.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.audit import services as audit
from apps.core.errors import Conflict, InvalidTransition, ValidationFailed
from apps.core.principals import Principal
from apps.rbac import services as rbac

from ..choices import ACTIVE, DeploymentState, Phase, StepOutcome
from ..models import Deployment
from .common import (
    _actor_name,
    _close_step,
    _emit,
    _enqueue_advance,
    _locked,
)


def _reason(reason: str, what: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(f"A reason is required to {what}.", errors={"reason": [f"Say why you {what}."]})
    return reason


def _stopped(deployment: Deployment, actor: Principal, reason: str) -> None:
    deployment.stopped_by_name = _actor_name(actor)
    deployment.stop_reason = reason


def _halt_traffic(deployment: Deployment) -> dict | None:
    """The split a halt asks for: everything to the stable version and the new one at 0 % (None: hold as is)."""
    if deployment.replaces_id is None or not deployment.traffic:
        return None
    return {"stable": 100, "new": 0, "shadow": False}


@transaction.atomic(durable=True)
def deployment_halt(*, actor: Principal, deployment_id: Any, reason: str) -> Deployment:
    """Stop a rollout (``deployments.halt``: release managers and compliance officers), with a reason.

    Live traffic returns to the stable version where there is one; the new version stays up at 0 %.
    Audited ``deployment.halted``; publishes ``deployment.halted``; the rollout's job is queued at once.
    """
    deployment = _locked(deployment_id)
    rbac.require(actor, "deployments.halt", deployment, audit_action="deployment.halted")
    reason = _reason(reason, "halt it")
    halting = (DeploymentState.PENDING, DeploymentState.PROGRESSING, DeploymentState.PAUSED)
    if deployment.state not in halting:
        raise InvalidTransition(f"This deployment is {deployment.state.replace('_', ' ')}: there is nothing to halt.")
    before = {"state": deployment.state, "traffic": deployment.traffic}
    _close_step(deployment, outcome=StepOutcome.HALTED, message=f"halted by {actor.name}: {reason}")
    desired = _halt_traffic(deployment)
    deployment.state = DeploymentState.HALTED
    deployment.converged = desired is None or desired == deployment.traffic
    deployment.next_check_at = None if deployment.converged else timezone.now()
    _stopped(deployment, actor, reason)
    deployment.message = "halted: traffic back to the stable version" if desired else "halted: held as it is"
    deployment.save()
    audit.record(
        action="deployment.halted",
        actor=actor,
        target=deployment,
        before=before,
        after={"state": deployment.state, "traffic": desired or deployment.traffic},
        reason=reason,
    )
    _emit("deployment.halted", deployment, reason=reason)
    if not deployment.converged:
        _enqueue_advance(deployment, actor=actor)
    return deployment


@transaction.atomic(durable=True)
def deployment_resume(*, actor: Principal, deployment_id: Any, reason: str) -> Deployment:
    """Let a paused or halted rollout go on (``deployments.deploy``), with a reason. A halted rollout runs its step
    again; a paused one moves on past the step it paused after. Audited ``deployment.resumed``; its job is queued."""
    deployment = _locked(deployment_id)
    rbac.require(actor, "deployments.deploy", deployment, audit_action="deployment.resumed")
    reason = _reason(reason, "resume it")
    if deployment.state not in (DeploymentState.PAUSED, DeploymentState.HALTED):
        raise InvalidTransition(
            f"This deployment is {deployment.state.replace('_', ' ')}: only a paused or halted one resumes."
        )
    before = {"state": deployment.state, "step": deployment.step_index, "phase": deployment.phase}
    if deployment.state == DeploymentState.PAUSED:
        last = deployment.step_index + 1 >= len(deployment.steps)
        if deployment.phase != Phase.PROMOTE:
            deployment.phase = Phase.PROMOTE if last else Phase.APPLY
            deployment.step_index += 0 if last else 1
    elif deployment.phase != Phase.PROMOTE:
        deployment.phase = Phase.APPLY
    deployment.state = DeploymentState.PROGRESSING
    deployment.converged = True
    deployment.next_check_at = timezone.now()
    deployment.message = f"resumed by {actor.name}: {reason}"
    deployment.save()
    audit.record(
        action="deployment.resumed",
        actor=actor,
        target=deployment,
        before=before,
        after={"state": deployment.state, "step": deployment.step_index, "phase": deployment.phase},
        reason=reason,
    )
    _enqueue_advance(deployment, actor=actor)
    return deployment


def _begin_rollback(deployment: Deployment, *, actor: Principal, reason: str, figures: dict | None = None) -> None:
    """Move ``deployment`` (locked) to rolling back, or straight to rolled back when nothing was applied; audited.

    Shared by a person's rollback and the engine's automatic one (which passes the health ``figures``).
    """
    before = {"state": deployment.state, "traffic": deployment.traffic}
    _close_step(deployment, outcome=StepOutcome.FAILED, message=reason, figures=figures)
    _stopped(deployment, actor, reason)
    audit.record(
        action="deployment.rollback_started",
        actor=actor,
        target=deployment,
        before=before,
        after={"state": DeploymentState.ROLLING_BACK, "figures": figures or {}},
        reason=reason,
    )
    if not deployment.traffic and deployment.state != DeploymentState.SUCCEEDED:
        # nothing of this deployment reached the target: there is nothing to take back
        deployment.state = DeploymentState.ROLLED_BACK
        deployment.converged = True
        deployment.next_check_at = None
        deployment.finished_at = timezone.now()
        deployment.message = f"rolled back before anything was applied: {reason}"
        deployment.save()
        audit.record(action="deployment.rolled_back", actor=actor, target=deployment, reason=reason)
        _emit("deployment.rolled_back", deployment, reason=reason)
        return
    deployment.state = DeploymentState.ROLLING_BACK
    deployment.converged = False
    deployment.next_check_at = timezone.now()
    deployment.message = f"rolling back: {reason}"
    deployment.save()


@transaction.atomic(durable=True)
def deployment_rollback(*, actor: Principal, deployment_id: Any, reason: str) -> Deployment:
    """Send all traffic back to the stable version and remove the new one (``deployments.deploy``), with a reason.

    An active rollout, or a serving deployment that replaced another (which serves again). Audited
    ``deployment.rollback_started`` (and ``deployment.rolled_back`` once the target is back; publishes
    ``deployment.rolled_back`` then); the rollout's job is queued at once.
    """
    deployment = _locked(deployment_id)
    rbac.require(actor, "deployments.deploy", deployment, audit_action="deployment.rollback_started")
    reason = _reason(reason, "roll it back")
    if deployment.state == DeploymentState.SUCCEEDED:
        stable = deployment.replaces
        if stable is None or stable.state != DeploymentState.SUPERSEDED:
            raise InvalidTransition(
                "This deployment replaced no version that could serve again: undeploy it, or deploy another version."
            )
        active = Deployment.objects.filter(target=deployment.target, model=deployment.model, state__in=ACTIVE).first()
        if active is not None:
            raise Conflict(
                f"A rollout of {deployment.model.name} is active on {deployment.target.name}: halt it first."
            )
    elif deployment.state not in ACTIVE or deployment.state == DeploymentState.ROLLING_BACK:
        raise InvalidTransition(
            f"This deployment is {deployment.state.replace('_', ' ')}: there is nothing to roll back."
        )
    _begin_rollback(deployment, actor=actor, reason=reason)
    if not deployment.converged:
        _enqueue_advance(deployment, actor=actor)
    return deployment


@transaction.atomic(durable=True)
def deployment_undeploy(*, actor: Principal, deployment_id: Any, reason: str) -> Deployment:
    """Remove a serving deployment's service from its target (``deployments.deploy``), with a reason.

    Refused while another rollout of the model is active on the target. Audited ``deployment.undeployed``
    (and ``deployment.removed`` once the target confirms); the job is queued at once.
    """
    deployment = _locked(deployment_id)
    rbac.require(actor, "deployments.deploy", deployment, audit_action="deployment.undeployed")
    reason = _reason(reason, "undeploy it")
    if deployment.state != DeploymentState.SUCCEEDED:
        raise InvalidTransition(
            f"This deployment is {deployment.state.replace('_', ' ')}: only a serving one is undeployed "
            "(halt or roll back a rollout)."
        )
    active = Deployment.objects.filter(target=deployment.target, model=deployment.model, state__in=ACTIVE).first()
    if active is not None:
        raise Conflict(
            f"A rollout of {deployment.model.name} is active on {deployment.target.name} ({active.public_id})."
        )
    before = {"state": deployment.state, "traffic": deployment.traffic}
    deployment.state = DeploymentState.UNDEPLOYED
    deployment.converged = False
    deployment.next_check_at = timezone.now()
    deployment.finished_at = timezone.now()
    deployment.message = f"undeploying: {reason}"
    _stopped(deployment, actor, reason)
    deployment.save()
    audit.record(
        action="deployment.undeployed",
        actor=actor,
        target=deployment,
        before=before,
        after={"state": deployment.state},
        reason=reason,
    )
    _enqueue_advance(deployment, actor=actor)
    return deployment
