"""Writes for releases: request, approve or reject, cancel, re-evaluate, expire, and the break-glass review.

Every state change happens here, in one transaction, under a row lock on the request
(``select_for_update``), with its audit event and its event (``release.*``, published with
``apps.jobs.events`` inside the transaction so a rollback drops it; the webhooks subscribe).
Four eyes is enforced here, not in the pages: the requester and the version's author never
approve (a service account counts as its owner), a person counts once, an auditor never
approves, and approvals fill the decision's required roles by a proper matching
(``matching.match``).

States::

    pending_evidence ──evidence arrives──► pending_approval ──quorum──► approved
         │   ▲                                │   ▲                        │
         │   └────── release.reset ◄──────────┴───┴── decision changed ◄───┘
         └──────────────┴── expired (TTL) │ rejected (any approver) │ cancelled (requester, release manager)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.audit import services as audit
from apps.core.errors import Conflict, Denied, NotFound, ValidationFailed
from apps.core.principals import Principal, PrincipalKind
from apps.jobs import events
from apps.rbac import services as rbac
from apps.registry.choices import RiskTier, VersionStatus
from apps.registry.models import ModelVersion

from . import gates
from .choices import LIVE, OPEN, ApprovalDecision, ReleaseStatus, ReviewStatus
from .matching import match
from .models import Approval, Environment, PostReleaseReview, ReleaseRequest

logger = logging.getLogger(__name__)

SYSTEM = Principal.system("releases")
# Every release needs at least this, whatever the packs ask: four eyes is never optional.
APPROVAL_FLOOR = (("reviewer", 1),)


class PolicyNotSatisfied(Conflict):
    """The policy decision has blocking violations (409, with the violations)."""

    code = "policy_not_satisfied"
    title = "Policy not satisfied"


class DecisionChanged(Conflict):
    """The decision the approver saw is no longer the request's (409): review it again."""

    code = "decision_changed"
    title = "Decision changed"


class ApprovalNotNeeded(Conflict):
    """The approver's roles fill none of the slots still open (409)."""

    code = "approval_not_needed"
    title = "Approval not needed"


# ---------------------------------------------------------------------------------------------
# Helpers


@dataclass(frozen=True)
class ReleaseTarget:
    """A release not yet created, as rbac sees it: the version's team and model, and the environment."""

    version: ModelVersion
    environment: Environment

    def rbac_scope(self) -> tuple[int, int, int]:
        return (self.version.model.owner_team_id, self.version.model_id, self.environment.pk)

    def audit_ref(self) -> tuple[str, str, str]:
        return ("model_version", str(self.version.pk), f"{self.version} to {self.environment.name}")


def _person_id(actor: Principal) -> int | None:
    """The accountable person's user id (a service account's owner)."""
    kind, pk = actor.person_key
    return pk if kind == PrincipalKind.USER else None


def _revalidation_months() -> dict[str, int]:
    """``ASSAY_REVALIDATION_MONTHS`` ("high=12,limited=24,minimal=36") as {risk tier: months}."""
    months = {}
    for part in str(settings.ASSAY_REVALIDATION_MONTHS).split(","):
        if "=" in part:
            tier, _, value = part.partition("=")
            months[tier.strip()] = int(value)
    return months


def _add_months(moment: datetime, months: int) -> datetime:
    year, month = divmod(moment.month - 1 + months, 12)
    day = min(moment.day, 28)
    return moment.replace(year=moment.year + year, month=month + 1, day=day)


def revalidation_date(release: ReleaseRequest, approved_at: datetime) -> datetime | None:
    """When a production approval must be renewed (None outside production or for an unlisted tier)."""
    if not release.environment.production:
        return None
    months = _revalidation_months().get(release.model.risk_tier)
    return _add_months(approved_at, months) if months else None


def required_approvals(decision: dict) -> list[tuple[str, int]]:
    """(role, count) the decision asks for, never less than ``APPROVAL_FLOOR`` in total."""
    required = [(r["role"], int(r["count"])) for r in decision.get("required_approvals", []) if int(r["count"]) > 0]
    return required or list(APPROVAL_FLOOR)


def blocking(decision: dict) -> list[dict]:
    return [v for v in decision.get("violations", []) if v.get("severity") == "blocking"]


def approval_matching(release: ReleaseRequest, approvals: Iterable[Approval] | None = None):
    """The matching of the live approvals onto the decision's required slots."""
    live = [a for a in (approvals if approvals is not None else release.approvals.all()) if not a.void]
    approvers = [(a.approver_id, a.roles) for a in live if a.decision == ApprovalDecision.APPROVE]
    return match(required_approvals(release.decision), approvers)


def _locked(release_id: Any) -> ReleaseRequest:
    release = (
        ReleaseRequest.objects.select_for_update(of=("self",))
        .select_related("version", "model", "environment", "owner_team")
        .filter(public_id=release_id)
        .first()
    )
    if release is None:
        raise NotFound("No such release request.")
    return release


def _event_payload(release: ReleaseRequest) -> dict:
    return {
        "release": str(release.public_id),
        "model": release.model.name,
        "version": release.version.number,
        "environment": release.environment.name,
        "status": release.status,
        "emergency": release.emergency,
    }


def _emit(event: str, release: ReleaseRequest) -> None:
    """Publish ``event`` (a ``release.*`` name) in the caller's transaction, with the request as it is now."""
    payload = {"release_id": release.pk, "team_id": release.owner_team_id, **_event_payload(release)}
    events.publish(event, payload=payload, target=release)


def _pending_status(decision: dict) -> str:
    return ReleaseStatus.PENDING_EVIDENCE if decision.get("missing_evidence") else ReleaseStatus.PENDING_APPROVAL


def _ttl() -> timedelta:
    return timedelta(hours=settings.ASSAY_RELEASE_REQUEST_TTL_HOURS)


# ---------------------------------------------------------------------------------------------
# Request


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
        raise ValidationFailed(
            f"Unknown environment {environment!r}.", errors={"environment": [f"unknown environment: {environment}"]}
        )
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


# ---------------------------------------------------------------------------------------------
# Approvals


def _refuse(actor: Principal, release: ReleaseRequest, detail: str) -> None:
    raise Denied(detail, action="releases.approve", audit_action="release.approval_recorded", target=release)


def _check_four_eyes(actor: Principal, release: ReleaseRequest) -> None:
    """The requester and the version's author never decide on it; service accounts count as their owner."""
    me = actor.person_key
    if release.requested_by_id is not None and me == (PrincipalKind.USER, release.requested_by_id):
        _refuse(actor, release, "You requested this release: someone else must decide on it (four eyes).")
    version = release.version
    authors = {version.created_by_id}
    if version.created_by_service_account_id:
        authors.add(version.created_by_service_account.owner_id)
    if any(a is not None and me == (PrincipalKind.USER, a) for a in authors):
        _refuse(actor, release, "You are the author of this version: someone else must decide on it (four eyes).")


def approval_decide(
    *, actor: Principal, release_id: Any, decision: str, comment: str = "", binding_digest: str = ""
) -> Approval:
    """Record a person's approval or rejection; approve the release once every required slot is filled.

    One transaction under the request's row lock. The request is first re-judged on the model
    facts, evidence and packs of now (the re-evaluation's own step, ``_judge``): if that expires
    it (past ``expires_at``) or moves the basis of its decision (a new binding digest: approvals
    voided, back to pending), that change is committed and the approval is refused (409), so
    nobody's approval counts against a decision they have not seen. ``binding_digest``, when
    given, is the digest the approver saw: another one is a 409 (``DecisionChanged``). Audited
    ``release.approval_recorded`` then ``release.approved`` or ``release.rejected``.
    """
    outcome = _approval_decide(
        actor=actor, release_id=release_id, decision=decision, comment=comment, binding_digest=binding_digest
    )
    if isinstance(outcome, Exception):
        raise outcome  # after the commit of what the re-judging wrote
    return outcome


@transaction.atomic
def _approval_decide(
    *, actor: Principal, release_id: Any, decision: str, comment: str, binding_digest: str
) -> Approval | Conflict:
    release = _locked(release_id)
    rbac.require(actor, "releases.approve", release, audit_action="release.approval_recorded")
    if not rbac.can_approve(actor, release):
        _refuse(actor, release, "Auditors never approve releases.")
    if decision not in ApprovalDecision.values:
        raise ValidationFailed(
            f"Unknown decision {decision!r}; choose approve or reject.", errors={"decision": ["approve or reject"]}
        )
    comment = (comment or "").strip()
    if decision == ApprovalDecision.REJECT and not comment:
        raise ValidationFailed("A rejection needs a reason.", errors={"comment": ["Say why the release is rejected."]})
    judged = _judge(release, reason="an approval was submitted", now=timezone.now())
    if judged == EXPIRED:
        return Conflict("This release is expired: it takes no more decisions.")
    if judged == RESET:
        return DecisionChanged(
            "The policy decision changed before your approval was recorded (model facts, evidence or policies): "
            "review it again.",
            extra={"binding_digest": release.binding_digest},
        )
    if release.status == ReleaseStatus.PENDING_EVIDENCE and decision == ApprovalDecision.APPROVE:
        raise Conflict(
            "This release waits for evidence: "
            + "; ".join(m.get("reason", m.get("kind", "")) for m in release.decision.get("missing_evidence", []))
        )
    if release.status not in OPEN:
        raise Conflict(f"This release is {release.status.replace('_', ' ')}: it takes no more decisions.")
    if binding_digest and binding_digest != release.binding_digest:
        raise DecisionChanged(
            "The policy decision changed since you read it (new evidence or policies): review it again.",
            extra={"binding_digest": release.binding_digest},
        )
    _check_four_eyes(actor, release)
    person_id = _person_id(actor)
    approvals = list(release.approvals.all())
    if any(a.approver_id == person_id and not a.void for a in approvals):
        raise Conflict("You have already decided on this release: one person counts once.")
    if decision == ApprovalDecision.APPROVE and blocking(release.decision) and not release.emergency:
        raise PolicyNotSatisfied(
            "The policies refuse this release now: " + "; ".join(v["message"] for v in blocking(release.decision)),
            extra={"violations": blocking(release.decision)},
        )
    roles = sorted(rbac.roles_with(actor, "releases.approve", release))
    now = timezone.now()
    approval = Approval(
        release=release,
        approver_id=person_id,
        approver_service_account_id=actor.id if actor.kind == PrincipalKind.SERVICE_ACCOUNT else None,
        decision=decision,
        comment=comment,
        roles=roles,
        binding_digest=release.binding_digest,
    )
    if decision == ApprovalDecision.APPROVE:
        before = approval_matching(release, approvals)
        after = approval_matching(release, [*approvals, approval])
        if len(after.assigned) <= len(before.assigned):
            open_slots = [s.role for s in after.slots if s not in after.assigned]
            raise ApprovalNotNeeded(
                f"Your roles ({', '.join(roles) or 'none'}) fill none of the approvals still needed "
                f"({', '.join(open_slots) or 'none'})."
            )
    try:
        with transaction.atomic():
            approval.save()
    except IntegrityError:
        raise Conflict("You have already decided on this release: one person counts once.") from None
    audit.record(
        action="release.approval_recorded",
        actor=actor,
        target=release,
        related=approval,
        after={"decision": decision, "roles": roles, "binding_digest": release.binding_digest},
        reason=comment,
    )
    if decision == ApprovalDecision.REJECT:
        _close(release, actor=actor, status=ReleaseStatus.REJECTED, action="release.rejected", reason=comment, now=now)
        return approval
    if after.complete:
        release.status = ReleaseStatus.APPROVED
        release.approved_at = now
        release.revalidate_at = revalidation_date(release, now)
        release.expires_at = None
        release.save(update_fields=["status", "approved_at", "revalidate_at", "expires_at", "updated_at"])
        if release.revalidate_at:
            Approval.objects.filter(release=release, void=False, decision=ApprovalDecision.APPROVE).update(
                revalidate_at=release.revalidate_at
            )
            approval.revalidate_at = release.revalidate_at
        audit.record(
            action="release.approved",
            actor=actor,
            target=release,
            before={"status": ReleaseStatus.PENDING_APPROVAL},
            after={
                "status": ReleaseStatus.APPROVED,
                "binding_digest": release.binding_digest,
                "revalidate_at": release.revalidate_at.isoformat() if release.revalidate_at else None,
                "approvers": {f"{s.role}#{s.index}": key for s, key in after.assigned.items()},
            },
        )
        _emit("release.approved", release)
    return approval


def _close(release: ReleaseRequest, *, actor: Principal, status: str, action: str, reason: str, now) -> None:
    before = release.status
    release.status = status
    release.closed_at = now
    release.closed_reason = reason
    release.save(update_fields=["status", "closed_at", "closed_reason", "updated_at"])
    audit.record(
        action=action, actor=actor, target=release, before={"status": before}, after={"status": status}, reason=reason
    )
    _emit(action, release)  # release.rejected, release.expired or release.cancelled


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


# ---------------------------------------------------------------------------------------------
# Re-evaluation and expiry


RESET, REJUDGED, EXPIRED = "reset", "rejudged", "expired"

# The parts of a stored decision that make it a different decision (not ``input``, whose audit
# facts move with every event, nor ``evaluated_at``).
DECISION_PARTS = (
    "allow",
    "violations",
    "missing_evidence",
    "required_approvals",
    "rules",
    "packs",
    "evidence",
    "artifact_sha256",
    "binding_digest",
)
# What a binding digest covers, by name, to say which basis moved.
BASIS_PARTS = {"artifact_sha256": "artifact", "facts_sha256": "model facts", "evidence": "evidence", "packs": "packs"}


def releases_reevaluate(
    *,
    version_ids: Iterable[int] | None = None,
    model_id: int | None = None,
    reason: str,
    progress: Callable[[int, str], Any] | None = None,
) -> list[ReleaseRequest]:
    """Re-judge every live request (pending or approved, not break-glass) in scope: of these versions,
    of this model, or (both None) all of them. Returns the requests reset.

    Called by this app's event subscriptions (``apps.releases.subscribers``): after an evidence
    run succeeds or a finding is reviewed, after a policy change, after a model's facts change.
    Each request is judged in a transaction of its own under its row lock (``_judge``): an open request past its time
    expires (``release.expired``); a new binding digest (artifact, model facts, evidence or
    packs) voids the approvals (``release.approvals_voided``) and returns the request to
    pending evidence or pending approval (``release.reset``); a decision that changed under
    the same digest (a rule result flipped) is stored and audited ``release.reevaluated``.
    Idempotent: a request whose decision is unchanged is not written, so running it twice
    writes nothing the second time.
    """
    qs = ReleaseRequest.objects.filter(status__in=LIVE, emergency=False)
    if version_ids is not None:
        qs = qs.filter(version_id__in=list(version_ids))
    if model_id is not None:
        qs = qs.filter(model_id=model_id)
    reset = []
    ids = list(qs.order_by("pk").values_list("public_id", flat=True))
    for done, public_id in enumerate(ids, start=1):
        release = _rejudge(public_id, reason=reason)
        if release is not None:
            reset.append(release)
        if progress is not None:
            progress(5 + 95 * done // len(ids), f"{done} of {len(ids)} requests judged, {len(reset)} reset")
    return reset


@transaction.atomic
def _rejudge(release_id: Any, *, reason: str) -> ReleaseRequest | None:
    """``_judge`` one request under its row lock; the request when it was reset, else None."""
    release = (
        ReleaseRequest.objects.select_for_update(of=("self",))
        .select_related("version", "version__model", "model", "environment")
        .filter(public_id=release_id)
        .first()
    )
    if release is None:
        return None
    return release if _judge(release, reason=reason, now=timezone.now()) == RESET else None


def _judge(release: ReleaseRequest, *, reason: str, now: datetime) -> str | None:
    """Re-judge one live request the caller holds the row lock of; what happened (``EXPIRED``,
    ``RESET``, ``REJUDGED``) or None when nothing changed and nothing was written."""
    if release.status not in LIVE or release.emergency:
        return None
    if release.status in OPEN and release.expires_at is not None and release.expires_at <= now:
        _close(release, actor=SYSTEM, status=ReleaseStatus.EXPIRED, action="release.expired", reason="expired", now=now)
        return EXPIRED
    decision = gates.decide(
        version=release.version, environment=release.environment, release=gates.release_input_for(release)
    ).as_dict()
    decision["evaluated_at"] = now.isoformat()
    stored = release.decision or {}
    if decision["binding_digest"] != release.binding_digest:
        _reset(release, decision, reason=reason, now=now)
        return RESET
    if all(stored.get(part) == decision.get(part) for part in DECISION_PARTS):
        return None
    before = _decision_summary(stored, release.status)
    was = release.status
    if release.status in OPEN:
        release.status = _pending_status(decision)
    release.decision = decision
    release.evaluated_at = now
    if release.status == ReleaseStatus.APPROVED and not approval_matching(release).complete:
        # the same basis now asks for more approvals (a rule's answer changed): wait for them
        release.status = ReleaseStatus.PENDING_APPROVAL
        release.approved_at = None
        release.revalidate_at = None
        release.expires_at = now + _ttl()
    release.save()
    after = _decision_summary(decision, release.status)
    before["rules"], after["rules"] = _rule_changes(stored, decision)
    audit.record(action="release.reevaluated", actor=SYSTEM, target=release, before=before, after=after, reason=reason)
    if release.status == ReleaseStatus.PENDING_APPROVAL and was != ReleaseStatus.PENDING_APPROVAL:
        _emit("release.approval_needed", release)
    return REJUDGED


def _reset(release: ReleaseRequest, decision: dict, *, reason: str, now: datetime) -> None:
    """The basis moved: void the approvals given on the old one and wait again. Audited
    ``release.approvals_voided`` (when there were any) and ``release.reset``."""
    stored = release.decision or {}
    moved = [name for key, name in BASIS_PARTS.items() if stored.get(key) != decision.get(key)]
    facts = _facts_changed(stored, decision)
    why = f"the decision changed ({', '.join(moved) or 'basis'}): {reason}"
    live = list(Approval.objects.filter(release=release, void=False).order_by("pk"))
    before = {
        "status": release.status,
        "binding_digest": release.binding_digest,
        "facts_sha256": stored.get("facts_sha256"),
    }
    basis = {
        "binding_digest": decision["binding_digest"],
        "facts_sha256": decision.get("facts_sha256"),
        "changed": moved,
        "facts_changed": facts,
    }
    if live:
        Approval.objects.filter(pk__in=[a.pk for a in live]).update(void=True, voided_at=now, void_reason=why)
        audit.record(
            action="release.approvals_voided",
            actor=SYSTEM,
            target=release,
            before={**before, "approvals": [{"approver": a.approver_id, "decision": a.decision} for a in live]},
            after={**basis, "approvals_voided": len(live)},
            reason=reason,
        )
    release.status = _pending_status(decision)
    release.decision = decision
    release.binding_digest = decision["binding_digest"]
    release.evaluated_at = now
    release.approved_at = None
    release.revalidate_at = None
    release.expires_at = now + _ttl()
    release.save()
    audit.record(
        action="release.reset",
        actor=SYSTEM,
        target=release,
        before=before,
        after={
            **basis,
            "status": release.status,
            "approvals_voided": len(live),
            "violations": [v["rule"] for v in decision.get("violations", [])],
        },
        reason=reason,
    )
    _emit("release.reset", release)
    if release.status == ReleaseStatus.PENDING_APPROVAL:
        _emit("release.approval_needed", release)


def _facts_changed(stored: dict, decision: dict) -> list[str]:
    """The names of the bound model facts that differ between two decisions' inputs (``model.risk_tier``)."""
    from apps.policies.inputs import bound_facts

    old, new = bound_facts(stored.get("input") or {}), bound_facts(decision.get("input") or {})
    changed = []
    for part in ("model", "version"):
        keys = sorted(set(old[part]) | set(new[part]))
        changed += [f"{part}.{k}" for k in keys if old[part].get(k) != new[part].get(k)]
    if old["datasets"] != new["datasets"]:
        changed.append("datasets")
    return changed


def _decision_summary(decision: dict, status: str) -> dict:
    return {
        "status": status,
        "binding_digest": decision.get("binding_digest"),
        "allow": decision.get("allow"),
        "violations": [v["rule"] for v in decision.get("violations", [])],
        "missing_evidence": [m.get("rule") or m.get("kind") for m in decision.get("missing_evidence", [])],
        "required_approvals": [f"{r['role']}:{r['count']}" for r in decision.get("required_approvals", [])],
    }


def _rule_changes(before: dict, after: dict) -> tuple[dict, dict]:
    """{rule: result} before and after, for the rules whose result changed (or that came or went)."""
    old = {(r["pack"], r["rule"]): r["result"] for r in before.get("rules", [])}
    new = {(r["pack"], r["rule"]): r["result"] for r in after.get("rules", [])}
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return (
        {f"{p}:{r}": old.get((p, r)) for p, r in keys},
        {f"{p}:{r}": new.get((p, r)) for p, r in keys},
    )


def releases_expire_due(*, now: datetime | None = None) -> int:
    """Expire open requests past their ``expires_at`` (the periodic job); each audited ``release.expired``."""
    now = now or timezone.now()
    due = ReleaseRequest.objects.filter(status__in=OPEN, expires_at__lte=now).values_list("public_id", flat=True)
    count = 0
    for public_id in list(due):
        with transaction.atomic():
            release = ReleaseRequest.objects.select_for_update(of=("self",)).filter(public_id=public_id).first()
            if release is None or release.status not in OPEN or release.expires_at is None or release.expires_at > now:
                continue
            _close(
                release, actor=SYSTEM, status=ReleaseStatus.EXPIRED, action="release.expired", reason="expired", now=now
            )
            count += 1
    return count


# ---------------------------------------------------------------------------------------------
# Environments and the break-glass review


@transaction.atomic
def environment_create(
    *,
    actor: Principal,
    name: str,
    production: bool = False,
    requires_change_reference: bool = False,
    description: str = "",
) -> Environment:
    """Define a new environment (admins). Audited ``environment.created``; publishes ``environment.changed``
    (every version's gate decision there is then made by jobs)."""
    rbac.require(actor, "accounts.manage", audit_action="environment.created")
    if Environment.objects.filter(name=name).exists():
        raise Conflict(f"An environment named {name!r} exists already.")
    env = Environment.objects.create(
        name=name, production=production, requires_change_reference=requires_change_reference, description=description
    )
    audit.record(
        action="environment.created",
        actor=actor,
        target=env,
        after={"name": name, "production": production, "requires_change_reference": requires_change_reference},
    )
    events.publish("environment.changed", payload={"environment_id": env.pk, "environment": name}, target=env)
    return env


@transaction.atomic
def post_release_review_close(*, actor: Principal, release_id: Any, findings: str) -> PostReleaseReview:
    """A compliance officer closes the review a break-glass release opened, with findings. Audited."""
    release = _locked(release_id)
    # Decide first: whether a release has a review is not for those who may not see the release.
    rbac.require(actor, "releases.review", release, audit_action="post_release_review.closed")
    review = PostReleaseReview.objects.select_for_update().filter(release=release).first()
    if review is None:
        raise NotFound("This release has no post-release review (it was not an emergency release).")
    if release.requested_by_id is not None and actor.person_key == (PrincipalKind.USER, release.requested_by_id):
        raise Denied(
            "You requested this emergency release: another person must review it.",
            action="releases.review",
            audit_action="post_release_review.closed",
            target=release,
        )
    findings = (findings or "").strip()
    if not findings:
        raise ValidationFailed(
            "Closing a review needs findings.", errors={"findings": ["Write what the review found."]}
        )
    if review.status != ReviewStatus.OPEN:
        raise Conflict("This review is closed already.")
    review.status = ReviewStatus.CLOSED
    review.findings = findings
    review.closed_by_id = _person_id(actor)
    review.closed_at = timezone.now()
    review.save()
    audit.record(
        action="post_release_review.closed",
        actor=actor,
        target=review,
        related=release,
        before={"status": ReviewStatus.OPEN},
        after={"status": ReviewStatus.CLOSED},
        reason=findings,
    )
    return review
