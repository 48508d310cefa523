"""Release requests: create (with the break-glass path) and cancel."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.audit import services as audit
from apps.core.errors import Conflict, NotFound, ValidationFailed
from apps.core.principals import Principal, PrincipalKind
from apps.rbac import services as rbac
from apps.registry.choices import RiskTier, VersionStatus
from apps.registry.models import ModelVersion

from .. import gates
from ..choices import LIVE, ReleaseStatus
from ..environments import unknown_environment
from ..models import Environment, PostReleaseReview, ReleaseRequest
from .common import (
    PolicyNotSatisfied,
    ReleaseTarget,
    _close,
    _emit,
    _locked,
    _pending_status,
    _person_id,
    _ttl,
    blocking,
    revalidation_date,
)


@transaction.atomic
def release_request_create(
    *,
    actor: Principal,
    model_name: str,
    number: int,
    environment: str,
    justification: str,
    change_reference: str = "",
    emergency: bool = False,
) -> ReleaseRequest:
    """Ask to release a version into an environment; the policy decision is evaluated and stored.

    Needs ``releases.request`` (``releases.emergency`` for a break-glass request) on the version
    in that environment. Refused with 409 when the decision has blocking violations (unless
    emergency), when the version is not ready, or when a live request (pending or approved) exists
    (``LiveReleaseExists``, naming it; checked under the version's row lock). Writes
    ``release.requested`` (+ ``release.emergency_requested``, ``release.approved`` and
    ``post_release_review.opened`` for an emergency); emits ``release.requested`` and, when it
    waits for people, ``release.approval_needed``.
    """
    version = (
        ModelVersion.objects.select_related("model", "model__owner_team")
        .filter(model__name=model_name, number=number)
        .first()
    )
    if version is None:
        # The same 404 as for a version the actor may not see: nobody learns which versions exist.
        raise NotFound(f"No version {number} of a model named {model_name!r}.")
    action = "release.emergency_requested" if emergency else "release.requested"
    env = Environment.objects.filter(name=environment).first()
    if env is None:
        # Only to those who may see the version: a stranger learns nothing of which versions exist.
        rbac.require(actor, "registry.view", version, audit_action=action)
        raise unknown_environment(environment)
    target = ReleaseTarget(version, env)
    rbac.require(actor, "releases.emergency" if emergency else "releases.request", target, audit_action=action)
    justification = (justification or "").strip()
    change_reference = (change_reference or "").strip()
    if not justification:
        raise ValidationFailed(
            "A justification is required.", errors={"justification": ["Say why this version should be released."]}
        )
    if env.requires_change_reference and not change_reference:
        raise ValidationFailed(
            f"Releases to {env.name} need a change reference.",
            errors={"change_reference": [f"required for {env.name}"]},
        )
    if version.status != VersionStatus.READY:
        raise Conflict(f"{version} is {version.status.replace('_', ' ')}: only verified versions are released.")
    if emergency and version.model.risk_tier == RiskTier.UNACCEPTABLE:
        raise PolicyNotSatisfied("A model of unacceptable risk is never released, not even in an emergency.")
    requester_id = _person_id(actor)
    decision = gates.decide(
        version=version,
        environment=env,
        release=gates.release_input(
            change_reference=change_reference, requested_by_id=requester_id, emergency=emergency
        ),
    )
    document = decision.as_dict()
    if blocking(document) and not emergency:
        raise PolicyNotSatisfied(
            f"The policies refuse {version} in {env.name}: " + "; ".join(v["message"] for v in blocking(document)),
            extra={"violations": blocking(document)},
        )
    # The version's row lock serialises requests for it, so the check below and the insert agree;
    # the partial unique index backs the rule whatever races the service loses.
    ModelVersion.objects.select_for_update().filter(pk=version.pk).first()
    live = _live_request(version, env)
    if live is not None:
        raise _live_conflict(version, env, live)
    now = timezone.now()
    status = ReleaseStatus.APPROVED if emergency else _pending_status(document)
    release = ReleaseRequest(
        version=version,
        model=version.model,
        owner_team=version.model.owner_team,
        environment=env,
        status=status,
        justification=justification,
        change_reference=change_reference,
        emergency=emergency,
        requested_by_id=requester_id,
        requested_by_service_account_id=actor.id if actor.kind == PrincipalKind.SERVICE_ACCOUNT else None,
        decision=document,
        binding_digest=document["binding_digest"],
        evaluated_at=now,
        expires_at=None if emergency else now + _ttl(),
    )
    release.decision["evaluated_at"] = now.isoformat()
    try:
        with transaction.atomic():
            release.save()
    except IntegrityError:
        raise _live_conflict(version, env, _live_request(version, env)) from None
    after = {
        "status": status,
        "environment": env.name,
        "justification": justification,
        "change_reference": change_reference,
        "emergency": emergency,
        "binding_digest": release.binding_digest,
        "packs": document.get("packs", []),
        "violations": [v["rule"] for v in document.get("violations", [])],
        "missing_evidence": document.get("missing_evidence", []),
    }
    audit.record(
        action="release.requested",
        actor=actor,
        target=release,
        related=version,
        after=after,
        reason=justification,
        artifact_sha256=version.sha256,
    )
    _emit("release.requested", release)
    if emergency:
        _open_emergency(release, actor=actor, now=now)
    elif status == ReleaseStatus.PENDING_APPROVAL:
        _emit("release.approval_needed", release)
    return release


class LiveReleaseExists(Conflict):
    """The version already has a live request (pending or approved) for the environment (409, naming it)."""

    code = "live_release_exists"
    title = "A live release request exists"


def _live_request(version: ModelVersion, env: Environment) -> ReleaseRequest | None:
    return ReleaseRequest.objects.filter(version=version, environment=env, status__in=LIVE).first()


def _live_conflict(version: ModelVersion, env: Environment, live: ReleaseRequest | None) -> Conflict:
    """At most one live request (pending evidence, pending approval or approved) per version and environment."""
    if live is None:
        return LiveReleaseExists(f"{version} already has a live release request for {env.name}.")
    return LiveReleaseExists(
        f"{version} already has a live release request for {env.name} ({live.status.replace('_', ' ')}, "
        f"{live.public_id}): decide, cancel or wait for it instead of requesting again.",
        extra={"live_release": {"id": str(live.public_id), "status": live.status}},
    )


def _open_emergency(release: ReleaseRequest, *, actor: Principal, now: datetime) -> None:
    """A break-glass release is approved at once, recorded prominently, and opens its mandatory review."""
    audit.record(
        action="release.emergency_requested",
        actor=actor,
        target=release,
        related=release.version,
        after={"violations": blocking(release.decision), "missing_evidence": release.decision.get("missing_evidence")},
        reason=release.justification,
        artifact_sha256=release.version.sha256,
    )
    release.approved_at = now
    release.revalidate_at = revalidation_date(release, now)
    release.save(update_fields=["approved_at", "revalidate_at", "updated_at"])
    audit.record(
        action="release.approved",
        actor=actor,
        target=release,
        before={"status": ReleaseStatus.PENDING_APPROVAL},
        after={"status": ReleaseStatus.APPROVED, "emergency": True},
        reason="break-glass release",
    )
    review = PostReleaseReview.objects.create(release=release)
    audit.record(action="post_release_review.opened", actor=actor, target=review, related=release)
    _emit("release.approved", release)


@transaction.atomic
def release_cancel(*, actor: Principal, release_id: Any, reason: str = "") -> ReleaseRequest:
    """Withdraw a request that is open or approved (not yet deployed): its requester, or a release manager.

    Audited ``release.cancelled``.
    """
    release = _locked(release_id)
    is_requester = release.requested_by_id is not None and actor.person_key == (
        PrincipalKind.USER,
        release.requested_by_id,
    )
    permission = "releases.request" if is_requester else "releases.deploy"
    rbac.require(actor, permission, release, audit_action="release.cancelled")
    if release.status not in LIVE:
        raise Conflict(f"This release is {release.status.replace('_', ' ')}: there is nothing to cancel.")
    _close(
        release,
        actor=actor,
        status=ReleaseStatus.CANCELLED,
        action="release.cancelled",
        reason=(reason or "").strip(),
        now=timezone.now(),
    )
    return release
