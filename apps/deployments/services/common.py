"""What the deployment services share: the system principal, errors, the row lock, events and the timeline."""

from __future__ import annotations

import re
from typing import Any

from django.utils import timezone

from apps.core.errors import Conflict, NotFound
from apps.core.principals import Principal
from apps.jobs import events
from apps.jobs import services as jobs
from apps.jobs.models import Job, JobStatus

from ..choices import StepOutcome
from ..models import Deployment, DeploymentStep

SYSTEM = Principal.system("deployments")
ADVANCE_JOB = "deployments.advance"


class GovernanceRefused(Conflict):
    """The version may not go to the target now (not approved there, expired, voided, another digest): 409."""

    code = "governance_refused"
    title = "Deployment refused by governance"


class ActiveDeploymentExists(Conflict):
    """A rollout of the model is already under way on the target (409, naming it)."""

    code = "active_deployment_exists"
    title = "A deployment is already active"


def service_name(model_name: str) -> str:
    """The model's service name on a target: a DNS label (``plans.SERVICE_NAME``)."""
    name = re.sub(r"[^a-z0-9-]+", "-", model_name.lower()).strip("-")[:52].strip("-")
    return name or "model"


def _locked(deployment_id: Any, *, by_pk: bool = False) -> Deployment:
    """The deployment, locked for the rest of the transaction; 404 when there is none."""
    lookup = {"pk": deployment_id} if by_pk else {"public_id": deployment_id}
    deployment = (
        Deployment.objects.select_for_update(of=("self",))
        .select_related("release", "version", "model", "target", "environment", "replaces")
        .filter(**lookup)
        .first()
    )
    if deployment is None:
        raise NotFound("No such deployment.")
    return deployment


def _payload(deployment: Deployment, **extra: Any) -> dict:
    """The event payload: ids and values of now (the webhook body leaves out the internal ids)."""
    return {
        "deployment_id": deployment.pk,
        "team_id": deployment.owner_team_id,
        "deployment": str(deployment.public_id),
        "release": str(deployment.release.public_id),
        "model": deployment.model.name,
        "version": deployment.version.number,
        "digest": deployment.version.sha256,
        "target": deployment.target.name,
        "environment": deployment.environment.name,
        "strategy": deployment.strategy,
        "state": deployment.state,
        "step": deployment.step_index,
        "steps": len(deployment.steps),
        "traffic": deployment.traffic,
        "emergency": deployment.emergency,
        **extra,
    }


def _emit(name: str, deployment: Deployment, **extra: Any) -> None:
    """Publish ``name`` (a ``deployment.*`` event) in the caller's transaction, with the deployment as it is now."""
    events.publish(name, payload=_payload(deployment, **extra), target=deployment)


def _enqueue_advance(deployment: Deployment, *, actor: Principal | None = None) -> None:
    """Queue the rollout's job now (in the caller's transaction), unless one is already waiting to run."""
    waiting = Job.objects.filter(
        kind=ADVANCE_JOB, target_type="deployment", target_id=str(deployment.public_id), status=JobStatus.QUEUED
    ).exists()
    if not waiting:
        jobs.job_enqueue(kind=ADVANCE_JOB, target=deployment, params={"deployment_id": deployment.pk}, actor=actor)


def _running_step(deployment: Deployment) -> DeploymentStep | None:
    return deployment.timeline.filter(outcome=StepOutcome.RUNNING).order_by("-id").first()


def _close_step(deployment: Deployment, *, outcome: str, message: str = "", figures: dict | None = None) -> None:
    """Finish the step that is running, if any, with ``outcome``."""
    step = _running_step(deployment)
    if step is None:
        return
    step.outcome = outcome
    step.finished_at = timezone.now()
    step.message = message[:2000]
    if figures is not None:
        step.figures = figures
    step.save(update_fields=["outcome", "finished_at", "message", "figures"])


def _actor_name(actor: Principal) -> str:
    return actor.name[:255]
