"""Approvals: a reviewer's decision, four eyes, and the quorum that approves a request."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.audit import services as audit
from apps.core.errors import Conflict, Denied, ValidationFailed
from apps.core.principals import Principal, PrincipalKind
from apps.rbac import services as rbac

from .. import duties
from ..choices import OPEN, ApprovalDecision, ReleaseStatus
from ..models import Approval, ReleaseRequest
from .common import (
    ApprovalNotNeeded,
    DecisionChanged,
    PolicyNotSatisfied,
    _close,
    _emit,
    _locked,
    _person_id,
    approval_matching,
    blocking,
    revalidation_date,
)
from .evaluation import EXPIRED, RESET, _judge


def _refuse(actor: Principal, release: ReleaseRequest, detail: str) -> None:
    raise Denied(detail, action="releases.approve", audit_action="release.approval_recorded", target=release)


def _check_four_eyes(actor: Principal, release: ReleaseRequest) -> None:
    """The requester and the version's author never decide on it (``duties.decider_refusal``, which the
    gate's preview reads too); service accounts count as their owner."""
    refused = duties.decider_refusal(actor.person_key, requested_by_id=release.requested_by_id, version=release.version)
    if refused:
        _refuse(actor, release, refused)


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
