"""From the database to what a driver and the rollout's decisions read: the ``Plan`` and the ``View``.

Pure reads: a worker calls these after taking the rollout, without holding a lock.

- ``step_plan``: the current step's (or the promotion's) plan: the stable version and the new one with
  the step's weights (``rollout.traffic``), or the new one alone once promoted;
- ``converge_plan``: what a halt, a rollback, a failure or an undeploy asks the target to run (None: remove
  the service);
- ``view``: the rollout as ``rollout.decide`` reads it.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings

from apps.core.storage import FolderStorage, get_storage

from . import rollout
from .choices import DeploymentKind, DeploymentState, Phase, Strategy
from .models import Deployment
from .plans import Member, Plan


def artifact_uri(version) -> str:
    """Where the version's bytes are, as a driver reads them: ``file:///…`` or ``s3://bucket/key``."""
    if version.artifact_is_reference:
        return version.artifact_uri
    storage = get_storage()
    if isinstance(storage, FolderStorage):
        return storage.local_path(version.artifact_uri).as_uri()
    return f"s3://{storage.bucket}/{storage.prefix}{version.artifact_uri}"


def member(deployment: Deployment, *, weight: int, shadow: bool = False) -> Member:
    """``deployment``'s version as a member of its service, with ``weight`` percent of live traffic."""
    replicas = deployment.target.settings.get("replicas", 1) if isinstance(deployment.target.settings, dict) else 1
    return Member(
        deployment_id=str(deployment.public_id),
        release_id=str(deployment.release.public_id),
        version_id=version_id(deployment),
        version=str(deployment.version.number),
        digest=deployment.version.sha256,
        artifact_uri=artifact_uri(deployment.version),
        format=deployment.version.format,
        weight=weight,
        shadow=shadow,
        replicas=int(replicas) if isinstance(replicas, int) and replicas > 0 else 1,
    )


def version_id(deployment: Deployment) -> str:
    """The deployment's version id as members carry it (``Member.version_id``: the version's id)."""
    return str(deployment.version_id)


def _plan(deployment: Deployment, members: list[Member], fence: int) -> Plan:
    return Plan(
        service=deployment.service,
        model=deployment.model.name,
        members=tuple(members),
        fence=fence,
        kind=deployment.kind,
        schedule=deployment.schedule,
    )


def stable_of(deployment: Deployment) -> Deployment | None:
    """The stable version's deployment: the one this replaced, while it serves (or served, for a rollback of a
    serving deployment)."""
    stable = deployment.replaces
    if stable is None or stable.state not in (DeploymentState.SUCCEEDED, DeploymentState.SUPERSEDED):
        return None
    return stable


def step_traffic(deployment: Deployment) -> dict:
    """The split of the current step ({"stable", "new", "shadow"}), or of the promotion (the new version alone)."""
    if deployment.phase == Phase.PROMOTE:
        return {"stable": None, "new": 100, "shadow": False}
    step = rollout.Step.of(deployment.steps[deployment.step_index])
    return rollout.traffic(
        step, has_stable=stable_of(deployment) is not None, shadow_strategy=deployment.strategy == Strategy.SHADOW
    )


def plan_for(deployment: Deployment, traffic: dict, fence: int) -> Plan:
    """The plan running ``traffic``: the stable member at its share (when it has one) and the new member."""
    members = []
    stable = stable_of(deployment)
    if stable is not None and traffic.get("stable") is not None:
        members.append(member(stable, weight=int(traffic["stable"])))
    if traffic.get("new") is not None:
        members.append(member(deployment, weight=int(traffic["new"]), shadow=bool(traffic.get("shadow"))))
    return _plan(deployment, members, fence)


def converge_traffic(deployment: Deployment) -> dict | None:
    """What the state asks the target to run once it converges: a halt keeps the new version at 0 % beside the
    stable one; a rollback, a failure and an undeploy leave the stable version alone (None: nothing at all)."""
    stable = stable_of(deployment)
    if deployment.state == DeploymentState.HALTED:
        return {"stable": 100, "new": 0, "shadow": False} if stable is not None else dict(deployment.traffic)
    if deployment.state == DeploymentState.UNDEPLOYED or stable is None:
        return None
    return {"stable": 100, "new": None, "shadow": False}


def view(deployment: Deployment, *, now: datetime) -> rollout.View:
    return rollout.View(
        phase=deployment.phase,
        step_index=deployment.step_index,
        steps=tuple(rollout.Step.of(s) for s in deployment.steps),
        thresholds=rollout.Thresholds.of(deployment.thresholds),
        version_id=version_id(deployment),
        digest=deployment.version.sha256,
        now=now,
        ready_deadline=deployment.ready_deadline,
        analysis_until=deployment.analysis_until,
        pause_until=deployment.pause_until,
        baseline=deployment.baseline or {},
        poll_seconds=float(settings.ASSAY_DEPLOY_POLL_SECONDS),
        batch=deployment.kind == DeploymentKind.BATCH,
    )
