"""The governance check a deployment must pass: at its start, and again immediately before every apply.

``refusal`` answers, from stored state only (it evaluates no policy and writes nothing), why the version
may not go to the target now, or ``""`` when it may:

- the release is approved (``approved``; a break-glass release is approved at once), for the target's
  environment and for this very version;
- an approved release has not passed its revalidation date (production), and a non-emergency one still
  has live approvals given on its current decision that fill every required slot (voided approvals never
  count);
- the decision is current: the gate (``apps.releases.selectors.gate_for``, which reads the stored decision
  the reacting jobs made) allows the version in the environment, on this release, with the same binding
  digest (a break-glass release overrides the policies: its gate answers ``emergency``);
- the version is ready, and its sha256 is the artifact digest the release was approved for.

The worker adds what only it can check: the artifact's bytes, re-hashed as they are fetched
(``worker.fetch.fetch_rehashed``), are that digest.
"""

from __future__ import annotations

from datetime import datetime

from apps.registry.choices import VersionStatus
from apps.registry.models import ModelVersion
from apps.releases.choices import ReleaseStatus
from apps.releases.matching import match
from apps.releases.models import ReleaseRequest
from apps.releases.selectors import counted_approvals, gate_for
from apps.releases.services import required_approvals

from .models import DeploymentTarget


def approved_digest(release: ReleaseRequest) -> str:
    """The artifact sha256 the release's decision was made (and approved) on."""
    return str((release.decision or {}).get("artifact_sha256") or "")


def refusal(
    *,
    release: ReleaseRequest,
    version: ModelVersion,
    target: DeploymentTarget,
    now: datetime,
    decision: dict | None = None,
) -> str:
    """Why ``version`` may not be deployed to ``target`` under ``release`` now (``""``: it may).

    ``decision``, when given, is the version's stored gate decision in the target's environment, read by a
    caller that judges many versions at once (``{}``: none is stored); otherwise the gate reads it.
    """
    env = target.environment
    if release.version_id != version.pk:
        return f"the release is for another version than {version}"
    if release.environment_id != target.environment_id:
        return f"the release is for {release.environment.name}, but target {target.name} serves {env.name}"
    if release.status != ReleaseStatus.APPROVED:
        return f"the release for {env.name} is {release.status.replace('_', ' ')}, not approved"
    if release.revalidate_at is not None and release.revalidate_at <= now:
        return f"the approval for {env.name} passed its revalidation date ({release.revalidate_at:%Y-%m-%d})"
    if not release.emergency:
        counted = counted_approvals(release.approvals.all(), release.binding_digest)
        if not match(required_approvals(release.decision), counted).complete:
            return "the release's approvals no longer fill its required approvals (some were voided)"
    gate = gate_for(version=version, environment=env, release=release, decision=decision)
    if not gate.allowed:
        return f"the gate does not allow {version} in {env.name} now ({gate.status.replace('_', ' ')})"
    if not release.emergency and release.binding_digest != (gate.decision or {}).get("binding_digest"):
        return "the policy decision changed since the release was approved"
    if version.status != VersionStatus.READY:
        return f"{version} is {version.status.replace('_', ' ')}"
    digest = approved_digest(release)
    if not digest or version.sha256 != digest:
        return f"the version's sha256 {version.sha256 or '(none)'} is not the approved digest {digest or '(none)'}"
    return ""
