"""Deciding a proposed change of a model's policy facts: approve (four eyes), reject, or cancel.

A change is proposed by ``model_update`` when it loosens what the model's gate reads. A compliance
officer (``registry.approve_facts``) other than the proposer approves or rejects it, with a reason;
an auditor never does. The team (``registry.model_edit``) may cancel it. Each decision locks the
change and its model, checks the change is still pending, writes, and audits in one transaction.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.audit import services as audit
from apps.core.errors import Conflict, Denied, InvalidTransition, NotFound, ValidationFailed
from apps.core.principals import Principal, same_person
from apps.rbac import services as rbac

from ..choices import FactsChangeStatus
from ..models import FactsChange, RegisteredModel
from .common import author
from .models import _model_updated


class FactsChanged(Conflict):
    """The model's facts changed since the proposal, so its "before" no longer holds (409)."""

    code = "facts_changed"
    title = "The facts changed since the proposal"


def _locked(change_id: Any) -> tuple[FactsChange, RegisteredModel]:
    change = FactsChange.objects.select_for_update().filter(public_id=change_id).first()
    if change is None:
        raise NotFound("No such facts change.")
    model = RegisteredModel.objects.select_for_update().select_related("owner_team").get(pk=change.model_id)
    change.model = model
    return change, model


def _reason(reason: str, what: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(f"Say why the change is {what}.", errors={"reason": ["Required."]})
    return reason


def _require_pending(change: FactsChange) -> None:
    if change.status != FactsChangeStatus.PENDING:
        raise InvalidTransition(f"This facts change is {change.status}: it takes no more decisions.")


def _check_decider(actor: Principal, change: FactsChange, model: RegisteredModel, audit_action: str) -> None:
    """``registry.approve_facts`` on the model, never an auditor, never the proposer (four eyes)."""
    rbac.require(actor, "registry.approve_facts", model, audit_action=audit_action, target=change)
    if not rbac.can_approve(actor, model, "registry.approve_facts"):
        raise Denied(
            "Auditors never approve or reject changes.",
            action="registry.approve_facts",
            audit_action=audit_action,
            target=change,
        )
    if same_person(actor, change.proposer()):
        raise Denied(
            "You proposed this change: another compliance officer must decide on it (four eyes).",
            action="registry.approve_facts",
            audit_action=audit_action,
            target=change,
        )


def _close(change: FactsChange, actor: Principal, status: str, reason: str) -> None:
    change.status = status
    change.decided_by_id = author(actor)["created_by_id"]
    change.decided_by_name = actor.name[:255]
    change.decided_at = timezone.now()
    change.decision_reason = reason
    change.save(
        update_fields=["status", "decided_by", "decided_by_name", "decided_at", "decision_reason", "updated_at"]
    )


@transaction.atomic
def facts_change_approve(*, actor: Principal, change_id: Any, reason: str) -> FactsChange:
    """Apply a pending facts change, if the model still holds every value it was proposed against.

    Otherwise a 409 (``FactsChanged``) naming the fields that moved, and nothing is applied. Audited
    ``facts_change.approved`` and ``model.updated`` (before/after, with the reason).
    """
    change, model = _locked(change_id)
    _check_decider(actor, change, model, "facts_change.approved")
    _require_pending(change)
    reason = _reason(reason, "approved")
    moved = [f for f, diff in change.changes.items() if getattr(model, f) != diff["before"]]
    if moved:
        raise FactsChanged(
            f"{model.name}'s {', '.join(moved)} changed since this was proposed: reject it, "
            "and the team proposes the change again against the current values.",
            extra={"fields": moved},
        )
    before = {f: diff["before"] for f, diff in change.changes.items()}
    after = {f: diff["after"] for f, diff in change.changes.items()}
    for name, value in after.items():
        setattr(model, name, value)
    model.save(update_fields=[*after, "updated_at"])
    _close(change, actor, FactsChangeStatus.APPROVED, reason)
    audit.record(action="facts_change.approved", actor=actor, target=change, related=model, reason=reason)
    audit.record(action="model.updated", actor=actor, target=model, before=before, after=after, reason=reason)
    _model_updated(model, list(after))
    return change


@transaction.atomic
def facts_change_reject(*, actor: Principal, change_id: Any, reason: str) -> FactsChange:
    """Refuse a pending facts change; the model keeps its facts. Audited ``facts_change.rejected``."""
    change, model = _locked(change_id)
    _check_decider(actor, change, model, "facts_change.rejected")
    _require_pending(change)
    reason = _reason(reason, "rejected")
    _close(change, actor, FactsChangeStatus.REJECTED, reason)
    audit.record(action="facts_change.rejected", actor=actor, target=change, related=model, reason=reason)
    return change


@transaction.atomic
def facts_change_cancel(*, actor: Principal, change_id: Any, reason: str = "") -> FactsChange:
    """Withdraw a pending facts change (the team, ``registry.model_edit``). Audited ``facts_change.cancelled``."""
    change, model = _locked(change_id)
    rbac.require(actor, "registry.model_edit", model, audit_action="facts_change.cancelled", target=change)
    _require_pending(change)
    reason = (reason or "").strip()
    _close(change, actor, FactsChangeStatus.CANCELLED, reason)
    audit.record(action="facts_change.cancelled", actor=actor, target=change, related=model, reason=reason)
    return change
