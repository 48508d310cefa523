"""The periodic access review: every role binding in scope, attested or revoked by a reviewer, all audited.

SOX (ITGC access controls) and PCI-DSS (7.2.4) ask for a periodic review of who holds which access.
``access_review_start`` snapshots every role binding in its scope (one team's: bindings on the team,
its models or held by it; or every binding) with who granted it, when, and when it was last used
(a person's last sign-in or token use; a service account's last token use). A reviewer (``accounts.review``:
compliance officers, admins) attests each grant or revokes it with a reason; revoking removes the
binding through ``rbac.role_revoke`` (which audits ``role_binding.deleted`` and keeps the last admin).
Nobody decides on their own grants. ``access_review_close`` needs every grant decided. Each step is
an audit event whose target is the review (``access_review.started``, ``.attested``, ``.revoked``,
``.closed``), so the review's report and evidence pack hold them (``target=access_review:<id>``).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from apps.accounts.models import ApiToken, Team
from apps.audit import services as audit
from apps.core.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from apps.core.principals import Principal
from apps.rbac import services as rbac
from apps.rbac.models import RoleBinding

from .choices import ReviewDecision
from .models import AccessReview, AccessReviewItem

PERMISSION = "accounts.review"


class OwnGrant(Conflict):
    """A reviewer may not attest or revoke their own access (segregation of duties): 409."""

    code = "own_grant"
    title = "Your own access"


def _bindings(team: Team | None):
    qs = RoleBinding.objects.select_related(
        "user", "team", "service_account", "scope_team", "scope_model", "scope_environment"
    ).order_by("id")
    if team is not None:
        qs = qs.filter(Q(scope_team=team) | Q(scope_model__owner_team=team) | Q(team=team))
    return qs


def _last_used(bindings: list[RoleBinding]) -> dict[str, Any]:
    """Last use per subject key: a person's last sign-in or token use, a service account's last token use."""
    users = {b.user_id for b in bindings if b.user_id}
    accounts = {b.service_account_id for b in bindings if b.service_account_id}
    tokens_by_user = dict(
        ApiToken.objects.filter(user_id__in=users)
        .values("user_id")
        .annotate(m=Max("last_used_at"))
        .values_list("user_id", "m")
    )
    tokens_by_account = dict(
        ApiToken.objects.filter(service_account_id__in=accounts)
        .values("service_account_id")
        .annotate(m=Max("last_used_at"))
        .values_list("service_account_id", "m")
    )
    out: dict[str, Any] = {}
    for b in bindings:
        if b.user_id:
            times = [t for t in (b.user.last_login, tokens_by_user.get(b.user_id)) if t]
            out[f"user:{b.user_id}"] = max(times) if times else None
        elif b.service_account_id:
            out[f"service_account:{b.service_account_id}"] = tokens_by_account.get(b.service_account_id)
    return out


def _key(b: RoleBinding) -> str:
    if b.user_id:
        return f"user:{b.user_id}"
    if b.service_account_id:
        return f"service_account:{b.service_account_id}"
    return f"team:{b.team_id}"


@transaction.atomic
def access_review_start(*, actor: Principal, team_name: str = "", title: str = "") -> AccessReview:
    """Snapshot every binding in scope for review. Records ``access_review.started``."""
    rbac.require(actor, PERMISSION, audit_action="access_review.started")
    team = None
    if team_name:
        team = Team.objects.filter(name=team_name).first()
        if team is None:
            raise NotFound(f"No team {team_name}.")
    bindings = list(_bindings(team))
    if not bindings:
        raise ValidationFailed("There is no role binding to review in that scope.", errors={"team": ["No grants."]})
    today = timezone.now().date().isoformat()
    review = AccessReview.objects.create(
        title=(title or f"Access review {today}" + (f", team {team.name}" if team else ", every team"))[:200],
        team=team,
        started_by_id=actor.id if actor.kind == "user" else None,
        started_by_name=actor.name,
    )
    used = _last_used(bindings)
    AccessReviewItem.objects.bulk_create(
        AccessReviewItem(
            review=review,
            binding_id=b.pk,
            subject=b.subject_label,
            subject_key=_key(b),
            role=b.role,
            scope=b.scope_label,
            granted_by=b.granted_by,
            granted_at=b.created_at,
            last_used_at=used.get(_key(b)),
        )
        for b in bindings
    )
    audit.record(
        action="access_review.started",
        actor=actor,
        target=review,
        after={"team": team.name if team else None, "grants": len(bindings)},
    )
    return review


def _public_id(review_id: Any) -> uuid.UUID:
    try:
        return uuid.UUID(str(review_id))
    except ValueError:
        raise NotFound("No such access review.") from None


def _open_review(review_id: Any) -> AccessReview:
    review = AccessReview.objects.select_for_update().filter(public_id=_public_id(review_id)).first()
    if review is None:
        raise NotFound("No such access review.")
    if review.status != "open":
        raise InvalidTransition("The access review is closed.")
    return review


@transaction.atomic
def access_review_decide(
    *, actor: Principal, review_id: Any, item_id: int, decision: str, reason: str = ""
) -> AccessReviewItem:
    """Attest or revoke one grant. Records ``access_review.attested`` or ``access_review.revoked``."""
    action = {"attest": "access_review.attested", "revoke": "access_review.revoked"}.get(decision)
    rbac.require(actor, PERMISSION, audit_action=action or "access_review.decided")
    if action is None:
        raise ValidationFailed("decision: attest or revoke.", errors={"decision": ["Choose attest or revoke."]})
    reason = (reason or "").strip()
    if decision == "revoke" and not reason:
        raise ValidationFailed("reason: say why the access is revoked.", errors={"reason": ["Required to revoke."]})
    review = _open_review(review_id)
    item = AccessReviewItem.objects.select_for_update().filter(review=review, pk=item_id).first()
    if item is None:
        raise NotFound("No such grant in this review.")
    if item.decision != ReviewDecision.PENDING:
        raise InvalidTransition(f"This grant was already {item.decision} by {item.decided_by_name}.")
    if item.subject_key == f"{actor.kind}:{actor.id}":
        raise OwnGrant("You may not review your own access: another reviewer decides on it.")
    note = ""
    if decision == "revoke":
        if RoleBinding.objects.filter(pk=item.binding_id).exists():
            rbac.role_revoke(actor=actor, binding_id=item.binding_id, permission=PERMISSION)
        else:
            note = "the binding had already been removed"
    item.decision = ReviewDecision.ATTESTED if decision == "attest" else ReviewDecision.REVOKED
    item.decided_by_name, item.decided_at, item.reason = actor.name, timezone.now(), reason
    item.save(update_fields=["decision", "decided_by_name", "decided_at", "reason"])
    audit.record(
        action=action,
        actor=actor,
        target=review,
        after={
            "item": item.pk,
            "binding": item.binding_id,
            "subject": item.subject,
            "role": item.role,
            "scope": item.scope,
            **({"note": note} if note else {}),
        },
        reason=reason,
    )
    return item


@transaction.atomic
def access_review_close(*, actor: Principal, review_id: Any) -> AccessReview:
    """Close a review whose every grant is decided. Records ``access_review.closed``."""
    rbac.require(actor, PERMISSION, audit_action="access_review.closed")
    review = _open_review(review_id)
    pending = review.items.filter(decision=ReviewDecision.PENDING).count()
    if pending:
        raise InvalidTransition(f"{pending} grant(s) are still to be attested or revoked.")
    counts = {d: review.items.filter(decision=d).count() for d in (ReviewDecision.ATTESTED, ReviewDecision.REVOKED)}
    review.status, review.closed_at, review.closed_by_name = "closed", timezone.now(), actor.name
    review.save(update_fields=["status", "closed_at", "closed_by_name"])
    audit.record(action="access_review.closed", actor=actor, target=review, after=counts)
    return review


# --- reads ---------------------------------------------------------------------------------


def can_review(actor: Principal) -> bool:
    return rbac.has_global(actor, PERMISSION)


def can_read(actor: Principal) -> bool:
    """Reviewers, and the people who may read every account (auditors, admins)."""
    return rbac.has_global(actor, PERMISSION) or rbac.has_global(actor, "accounts.view")


def review_list(*, actor: Principal):
    if not can_read(actor):
        rbac.require(actor, PERMISSION, audit_action="access_review.denied")
    return AccessReview.objects.select_related("team")


def review_get(*, actor: Principal, review_id: Any) -> AccessReview:
    if not can_read(actor):
        rbac.require(actor, PERMISSION, audit_action="access_review.denied")
    review = AccessReview.objects.select_related("team").filter(public_id=_public_id(review_id)).first()
    if review is None:
        raise NotFound("No such access review.")
    return review
