"""The reconciler: what actually runs on every target, compared with what Assay approved and deployed there.

``reconcile_all`` asks each enabled target's driver for every service carrying Assay's labels
(``driver.services()``) and flags, per service:

- ``unknown_service``: a service no deployment of this target accounts for;
- ``unknown_version``: a version running that no deployment put there (a digest Assay never approved here);
- ``digest_mismatch``: a member whose artifact is not the digest its deployment was approved on;
- ``not_approved``: a version whose release no longer passes the governance check (expired, voided, its
  decision changed, no longer approved: ``apps.deployments.governance.refusal``);
- ``traffic_changed``: a finished deployment whose service's live split is not 100 % on its version
  (someone changed replicas or weights by hand);
- ``missing``: a serving deployment whose service is gone from the target.

Each target's findings go to ``apps.deployments.services.target_reconciled``, which audits and publishes
the new ones (``deployment.drift_detected``). A target that does not answer is left for the next pass.
"""

from __future__ import annotations

import logging

from django.utils import timezone

from apps.deployments import governance
from apps.deployments import services as deployments
from apps.deployments.choices import ACTIVE, DeploymentState
from apps.deployments.models import Deployment, DeploymentTarget
from apps.deployments.plans import DriverError, Observed
from apps.releases.selectors import approvals_named, environment_decisions
from worker.drivers.registry import driver_for

logger = logging.getLogger(__name__)

LIVE = (*ACTIVE, DeploymentState.SUCCEEDED)


def _finding(kind: str, service: str, message: str, deployment: Deployment | None = None, **extra) -> dict:
    version_id = extra.pop("version_id", "") or (str(deployment.version_id) if deployment else "")
    finding = {
        "key": f"{kind}:{service}:{version_id}",
        "kind": kind,
        "service": service,
        "message": message,
        "version_id": version_id,
    }
    if deployment is not None:
        finding |= {
            "team_id": deployment.owner_team_id,
            "deployment": str(deployment.public_id),
            "model": deployment.model.name,
            "version": deployment.version.number,
            "digest": deployment.version.sha256,
        }
    return finding | extra


def findings_for(target: DeploymentTarget, observed: list[Observed]) -> list[dict]:
    """What runs on ``target`` (``observed``) that no approved, current release accounts for."""
    now = timezone.now()
    live = list(
        Deployment.objects.filter(target=target, state__in=LIVE)
        .select_related("release", "version", "model", "replaces", "replaces__version", "replaces__model")
        # the governance check names each approver: read with the approvals, not one query per release
        .prefetch_related(approvals_named("release__approvals"), approvals_named("replaces__release__approvals"))
    )
    by_service: dict[str, list[Deployment]] = {}
    for d in live:
        by_service.setdefault(d.service, []).append(d)
    # every running version's stored gate decision, read in one query rather than one per member
    versions = {d.version_id for d in live} | {d.replaces.version_id for d in live if d.replaces_id}
    decisions = environment_decisions(environment=target.environment, version_ids=sorted(versions))
    found: list[dict] = []
    running = set()
    for service in observed:
        if not service.exists:
            continue
        running.add(service.service)
        mine = by_service.get(service.service, [])
        if not mine:
            found.append(
                _finding(
                    "unknown_service",
                    service.service,
                    f"{service.service} runs on {target.name}, not deployed by Assay",
                )
            )
        known: dict[str, Deployment] = {}
        for d in mine:
            known[str(d.version_id)] = d
            if d.replaces_id and d.state in ACTIVE:
                known.setdefault(str(d.replaces.version_id), d.replaces)
        for member in service.members:
            d = known.get(member.version_id)
            if d is None:
                if mine:
                    found.append(
                        _finding(
                            "unknown_version",
                            service.service,
                            f"a version no deployment put here runs in {service.service} "
                            f"(digest {member.digest or 'unknown'})",
                            version_id=member.version_id,
                            digest=member.digest,
                            team_id=mine[0].owner_team_id,
                            model=mine[0].model.name,
                        )
                    )
                continue
            if member.digest and member.digest != d.version.sha256:
                found.append(
                    _finding(
                        "digest_mismatch",
                        service.service,
                        f"{d.model.name} v{d.version.number} runs digest {member.digest}, not the approved "
                        f"{d.version.sha256}",
                        d,
                    )
                )
            reason = governance.refusal(
                release=d.release, version=d.version, target=target, now=now, decision=decisions.get(d.version_id, {})
            )
            if reason:
                found.append(
                    _finding(
                        "not_approved", service.service, f"{d.model.name} v{d.version.number} runs, but {reason}", d
                    )
                )
        serving = [d for d in mine if d.state == DeploymentState.SUCCEEDED]
        if serving and not any(d.state in ACTIVE for d in mine) and serving[0].converged:
            expected = {str(serving[0].version_id): 100}
            actual = {m.version_id: m.weight for m in service.members if not m.shadow and m.weight}
            if actual != expected:
                found.append(
                    _finding(
                        "traffic_changed",
                        service.service,
                        f"{service.service}'s live traffic is {actual}, not {expected} as deployed",
                        serving[0],
                    )
                )
    for d in live:
        if d.state == DeploymentState.SUCCEEDED and d.service not in running:
            found.append(
                _finding("missing", d.service, f"{d.model.name} v{d.version.number} is gone from {target.name}", d)
            )
    return found


def reconcile_target(target: DeploymentTarget) -> list[dict]:
    """Look at one target and record what was found; the new findings (a target that does not answer: none)."""
    try:
        observed = driver_for(target).services()
    except DriverError as exc:
        logger.warning("target %s could not be read: %s", target.name, exc)
        return []
    return deployments.target_reconciled(target_id=target.pk, findings=findings_for(target, observed))


def reconcile_all() -> int:
    """Reconcile every enabled target; how many new findings."""
    return sum(len(reconcile_target(t)) for t in DeploymentTarget.objects.filter(enabled=True).order_by("pk"))
