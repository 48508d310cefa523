"""Starting a deployment: an approved release's version onto one of its environment's targets.

One durable transaction: ``rbac.require`` on the release, the target's row lock (starts on one target are
serialised), the checks (one active rollout per target and model, the steps and thresholds, governance),
the row, its audit event, its published ``deployment.started`` and its first job. A governance refusal is
committed as the audit event ``deployment.refused`` before the 409 is raised.
"""

from __future__ import annotations

import re
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.audit import services as audit
from apps.audit.choices import Outcome
from apps.core.errors import Conflict, NotFound, ValidationFailed
from apps.core.principals import Principal, PrincipalKind
from apps.rbac import services as rbac
from apps.releases.models import ReleaseRequest
from apps.releases.selectors import approvals_named

from .. import governance, strategies
from ..choices import ACTIVE, DeploymentKind, DeploymentState, Phase, Strategy
from ..models import Deployment, DeploymentTarget
from .common import ActiveDeploymentExists, GovernanceRefused, _actor_name, _emit, _enqueue_advance, service_name

CRON = re.compile(r"^(\S+\s+){4}\S+$")


def _choice(field: str, value: str, choices: list[str]) -> str:
    if value not in choices:
        raise ValidationFailed(
            f"Unknown {field} {value!r}; choose one of {', '.join(choices)}.",
            errors={field: [f"Use one of: {', '.join(choices)}."]},
            extra={"valid_values": {field: choices}},
        )
    return value


def _target_for(release: ReleaseRequest, name: str) -> DeploymentTarget:
    target = (
        DeploymentTarget.objects.select_for_update(of=("self",)).select_related("environment").filter(name=name).first()
    )
    if target is None:
        serving = sorted(
            DeploymentTarget.objects.filter(environment_id=release.environment_id).values_list("name", flat=True)
        )
        raise ValidationFailed(
            f"Unknown target {name!r}; targets serving {release.environment.name}: {', '.join(serving) or 'none'}.",
            errors={"target": [f"Use one of: {', '.join(serving)}." if serving else "No target serves it."]},
            extra={"valid_values": {"target": serving}},
        )
    return target


def _started_by(actor: Principal) -> dict:
    kind, pk = actor.person_key
    return {
        "started_by_id": pk if kind == PrincipalKind.USER else None,
        "started_by_service_account_id": actor.id if actor.kind == PrincipalKind.SERVICE_ACCOUNT else None,
        "started_by_name": _actor_name(actor),
    }


def deployment_start(
    *,
    actor: Principal,
    release_id: Any,
    target: str,
    strategy: str = Strategy.DIRECT,
    steps: list | None = None,
    thresholds: dict | None = None,
    kind: str = DeploymentKind.ONLINE,
    schedule: str = "",
    reason: str = "",
) -> Deployment:
    """Start rolling an approved release's version out to one of its environment's targets (``deployments.deploy``).

    Refused with 409 while another rollout of the model is active on the target, when the version already
    serves there, and when governance refuses (``GovernanceRefused``: not approved for the target's
    environment, expired, voided, another digest). A governance refusal is committed as the audit event
    ``deployment.refused`` before the 409 is raised. Audited ``deployment.started``; publishes
    ``deployment.started``; queues the rollout's first job.
    """
    outcome = _deployment_start(
        actor=actor,
        release_id=release_id,
        target=target,
        strategy=strategy,
        steps=steps,
        thresholds=thresholds,
        kind=kind,
        schedule=schedule,
        reason=reason,
    )
    if isinstance(outcome, Exception):
        raise outcome  # after the commit of the refusal's audit event
    return outcome


@transaction.atomic(durable=True)
def _deployment_start(
    *,
    actor: Principal,
    release_id: Any,
    target: str,
    strategy: str,
    steps: list | None,
    thresholds: dict | None,
    kind: str,
    schedule: str,
    reason: str,
) -> Deployment | Exception:
    release = (
        ReleaseRequest.objects.select_related("version", "version__model", "model", "environment")
        .prefetch_related(approvals_named())  # the gate names the approvers
        .filter(public_id=release_id)
        .first()
    )
    if release is None:
        raise NotFound("No such release request.")
    rbac.require(actor, "deployments.deploy", release, audit_action="deployment.started")
    strategy = _choice("strategy", strategy, Strategy.values)
    kind = _choice("kind", kind, DeploymentKind.values)
    schedule = (schedule or "").strip()
    if kind == DeploymentKind.BATCH and not CRON.match(schedule):
        raise ValidationFailed(
            "A batch deployment needs a cron schedule of five fields, e.g. '0 2 * * *'.",
            errors={"schedule": ["A cron expression of five fields."]},
        )
    steps = strategies.checked_steps(strategy, steps)
    thresholds = strategies.checked_thresholds(strategy, thresholds)
    chosen = _target_for(release, target)
    if not chosen.enabled:
        raise Conflict(f"Target {chosen.name} is disabled.")
    version, now = release.version, timezone.now()
    active = Deployment.objects.filter(target=chosen, model=release.model, state__in=ACTIVE).first()
    if active is not None:
        raise ActiveDeploymentExists(
            f"A deployment of {release.model.name} is {active.state.replace('_', ' ')} on {chosen.name} "
            f"({active.public_id}): let it finish, halt or roll it back first.",
            extra={"active_deployment": {"id": str(active.public_id), "state": active.state}},
        )
    stable = Deployment.objects.filter(target=chosen, model=release.model, state=DeploymentState.SUCCEEDED).first()
    if stable is not None and stable.version_id == version.pk:
        raise Conflict(f"{version} already serves on {chosen.name} ({stable.public_id}).")
    if strategy == Strategy.SHADOW and stable is None:
        raise Conflict(f"A shadow needs a stable version serving on {chosen.name}; none does.")
    refused = governance.refusal(release=release, version=version, target=chosen, now=now)
    if refused:
        audit.record(
            action="deployment.refused",
            actor=actor,
            outcome=Outcome.FAILED,
            target=release,
            related=chosen,
            after={"target": chosen.name, "strategy": strategy},
            reason=refused,
            artifact_sha256=version.sha256,
        )
        return GovernanceRefused(f"Deployment refused: {refused}.", extra={"reason": refused})
    deployment = Deployment(
        release=release,
        version=version,
        model=release.model,
        owner_team_id=release.owner_team_id,
        environment=chosen.environment,
        target=chosen,
        service=service_name(release.model.name),
        kind=kind,
        schedule=schedule,
        strategy=strategy,
        steps=steps,
        thresholds=thresholds,
        state=DeploymentState.PENDING,
        phase=Phase.APPLY,
        next_check_at=now,
        replaces=stable,
        emergency=release.emergency,
        reason=(reason or "").strip(),
        **_started_by(actor),
    )
    try:
        with transaction.atomic():
            deployment.save()
    except IntegrityError:
        raise ActiveDeploymentExists(f"A deployment of {release.model.name} is active on {chosen.name}.") from None
    audit.record(
        action="deployment.started",
        actor=actor,
        target=deployment,
        related=release,
        after={
            "target": chosen.name,
            "environment": chosen.environment.name,
            "strategy": strategy,
            "steps": steps,
            "thresholds": thresholds,
            "kind": kind,
            "schedule": schedule,
            "stable": str(stable.public_id) if stable else None,
            "emergency": release.emergency,
        },
        reason=deployment.reason,
        artifact_sha256=version.sha256,
    )
    _emit("deployment.started", deployment)
    _enqueue_advance(deployment, actor=actor)
    return deployment
