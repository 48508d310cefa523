"""Registered models: create, and edit everything but the name (loosened policy facts wait for approval)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Team
from apps.audit import services as audit
from apps.core.errors import Conflict, NotFound, ValidationFailed
from apps.core.principals import Principal
from apps.jobs import events
from apps.rbac import services as rbac

from ..choices import DataCategory, FactsChangeStatus, RiskTier
from ..facts import FACT_FIELDS, POLICY_INPUT_FIELDS, loosens
from ..models import FactsChange, RegisteredModel
from .common import author, resolve_team

MODEL_EDITABLE = (
    "description",
    "intended_use",
    "limitations",
    "risk_tier",
    "data_categories",
    "jurisdictions",
    "default_evidence",
    # facts the policy packs read (apps/policies/packs/README.md)
    "automated_decisions",
    "human_review_path",
    "dpia_reference",
    "human_oversight",
    "minimisation_justification",
    "fairness_thresholds",
)
FAIRNESS_METRICS = ("demographic_parity_difference", "equalized_odds_difference")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")


def _choices(values: Any, allowed: type, field: str) -> list[str]:
    values = list(values or [])
    if not all(isinstance(v, str) for v in values):
        raise ValidationFailed(f"{field}: expected a list of strings.", errors={field: ["Expected strings."]})
    unknown = sorted(set(values) - set(allowed.values))
    if unknown:
        raise ValidationFailed(
            f"{field}: unknown value(s) {', '.join(unknown)}; choose from {', '.join(allowed.values)}.",
            errors={field: [f"unknown: {v}" for v in unknown]},
        )
    return sorted(set(values), key=values.index)


def _strings(values: Any, field: str) -> list[str]:
    values = list(values or [])
    if not all(isinstance(v, str) and v.strip() for v in values):
        raise ValidationFailed(f"{field}: expected a list of non-empty strings.", errors={field: ["Expected strings."]})
    return [v.strip() for v in values]


def _risk_tier(value: str) -> str:
    if value not in RiskTier.values:
        raise ValidationFailed(
            f"risk_tier must be one of {', '.join(RiskTier.values)}.", errors={"risk_tier": ["Unknown risk tier."]}
        )
    return value


def _model_snapshot(model: RegisteredModel) -> dict:
    return {
        "name": model.name,
        "owner_team": model.owner_team.name,
        **{field: getattr(model, field) for field in MODEL_EDITABLE},
    }


def _fairness_thresholds(value: Any) -> dict:
    """``{metric: largest allowed difference}`` for the fairness pack; 400 for unknown metrics or bad numbers."""
    value = value or {}
    if not isinstance(value, dict):
        raise ValidationFailed("fairness_thresholds: expected an object.", errors={"fairness_thresholds": ["Object."]})
    unknown = sorted(set(value) - set(FAIRNESS_METRICS))
    if unknown:
        raise ValidationFailed(
            f"fairness_thresholds: unknown metric(s) {', '.join(unknown)}; use {', '.join(FAIRNESS_METRICS)}.",
            errors={"fairness_thresholds": [f"unknown: {m}" for m in unknown]},
        )
    for metric, limit in value.items():
        if isinstance(limit, bool) or not isinstance(limit, int | float) or not 0 <= limit <= 1:
            raise ValidationFailed(
                f"fairness_thresholds.{metric} must be a number from 0 to 1.", errors={"fairness_thresholds": [metric]}
            )
    return {m: float(value[m]) for m in FAIRNESS_METRICS if m in value}


def _evidence_kinds(value) -> list[str]:
    """The evidence kinds to request for each verified version, in a stable order; 400 for unknown kinds."""
    from apps.evidence.choices import EvidenceKind

    kinds = _choices(value, EvidenceKind, "default_evidence")
    return [k for k in EvidenceKind.values if k in kinds]


@transaction.atomic
def model_create(
    *,
    actor: Principal,
    name: str,
    owner_team: Team | str,
    description: str = "",
    intended_use: str = "",
    limitations: str = "",
    risk_tier: str = RiskTier.LIMITED,
    data_categories: list[str] | tuple = (),
    jurisdictions: list[str] | tuple = (),
    default_evidence: list[str] | tuple = (),
) -> RegisteredModel:
    """Register a model owned by a team. Needs ``registry.model_create`` on that team. Audited ``model.created``."""
    team = resolve_team(owner_team, actor=actor)
    rbac.require(actor, "registry.model_create", team, audit_action="model.created")
    name = (name or "").strip()
    if not _NAME_RE.match(name):
        raise ValidationFailed(
            "name: lowercase letters, digits, '-' and '_', starting with a letter or digit, at most 100 characters.",
            errors={"name": ["Invalid model name."]},
        )
    if RegisteredModel.objects.filter(name=name).exists():
        raise Conflict(f"A model named {name!r} already exists; model names are unique and permanent.")
    model = RegisteredModel.objects.create(
        name=name,
        owner_team=team,
        description=description or "",
        intended_use=intended_use or "",
        limitations=limitations or "",
        risk_tier=_risk_tier(risk_tier),
        data_categories=_choices(data_categories, DataCategory, "data_categories"),
        jurisdictions=_strings(jurisdictions, "jurisdictions"),
        default_evidence=_evidence_kinds(default_evidence),
        created_by_id=author(actor)["created_by_id"],
    )
    audit.record(action="model.created", actor=actor, target=model, related=team, after=_model_snapshot(model))
    return model


@dataclass(frozen=True)
class ModelUpdate:
    """What a ``model_update`` did: the fields applied now, and those waiting in ``facts_change``."""

    model: RegisteredModel
    applied: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    facts_change: FactsChange | None = None


def facts_change_url(change: FactsChange) -> str:
    """The API path of a facts change."""
    return reverse("api:registry-facts-change-detail", kwargs={"change_id": change.public_id})


def _model_updated(model: RegisteredModel, fields: list[str]) -> None:
    """Published as ``model.updated`` (payload: the model's id and the fields that changed) inside the
    writing transaction, so that the releases app re-judges the model's live release requests.

    The one place the registry announces changed facts, whether applied at once or on approval.
    """
    events.publish("model.updated", payload={"model_id": model.pk, "fields": sorted(fields)}, target=model)


def _clean_changes(model: RegisteredModel, changes: dict) -> tuple[dict, dict]:
    """(before, after) of the fields whose cleaned value differs from the model's."""
    if "name" in changes and changes["name"] != model.name:
        raise ValidationFailed(
            "A model's name is its permanent key and cannot be changed.", errors={"name": ["Immutable."]}
        )
    unknown = sorted(set(changes) - set(MODEL_EDITABLE) - {"name"})
    if unknown:
        raise ValidationFailed(
            f"Fields that cannot be changed: {', '.join(unknown)}.",
            errors={name: ["This field cannot be changed."] for name in unknown},
        )
    cleaners = {
        "risk_tier": _risk_tier,
        "data_categories": lambda v: _choices(v, DataCategory, "data_categories"),
        "jurisdictions": lambda v: _strings(v, "jurisdictions"),
        "default_evidence": _evidence_kinds,
        "automated_decisions": bool,
        "fairness_thresholds": _fairness_thresholds,
    }
    before, after = {}, {}
    for name in MODEL_EDITABLE:
        if name not in changes:
            continue
        value = cleaners.get(name, lambda v: v or "")(changes[name])
        if getattr(model, name) != value:
            before[name] = getattr(model, name)
            after[name] = value
    return before, after


def _supersede_pending(actor: Principal, model: RegisteredModel, fields: list[str]) -> None:
    """A pending change of a field that has just changed again can never apply: mark it superseded."""
    if not fields:
        return
    pending = FactsChange.objects.filter(model=model, status=FactsChangeStatus.PENDING).first()
    if pending is None or not set(pending.fields) & set(fields):
        return
    pending.status = FactsChangeStatus.SUPERSEDED
    pending.decided_by_name = actor.name[:255]
    pending.decided_at = timezone.now()
    pending.decision_reason = f"{', '.join(sorted(set(pending.fields) & set(fields)))} changed again before a decision."
    pending.save(update_fields=["status", "decided_by_name", "decided_at", "decision_reason", "updated_at"])
    audit.record(
        action="facts_change.superseded", actor=actor, target=pending, related=model, reason=pending.decision_reason
    )


@transaction.atomic
def model_update(*, actor: Principal, name: str, changes: dict, reason: str = "") -> ModelUpdate:
    """Change a model's editable fields; its name never changes.

    A change that loosens a fact the gate reads (``apps.registry.facts.loosens``) does not apply: it
    becomes the model's pending ``FactsChange``, which needs ``reason`` and a compliance officer's
    approval (``facts_change_approve``). Everything else applies at once, audited ``model.updated``
    with before/after; the loosening part is audited ``facts_change.proposed``. A model has at most one
    pending change: proposing another is a 409 naming it, and nothing of the request applies.
    """
    model = RegisteredModel.objects.select_for_update().select_related("owner_team").filter(name=name).first()
    if model is None:
        raise NotFound(f"No model named {name!r}.")
    rbac.require(actor, "registry.model_edit", model, audit_action="model.updated")
    before, after = _clean_changes(model, changes)
    waiting = [f for f in after if loosens(f, before[f], after[f])]
    reason = (reason or "").strip()
    change = None
    if waiting:
        if not reason:
            raise ValidationFailed(
                f"These changes loosen what the model's gate reads and wait for a compliance officer's approval: "
                f"{', '.join(waiting)}. Say why in 'reason'.",
                errors={"reason": ["Required when a change loosens the model's policy facts."]},
                extra={"pending_fields": waiting},
            )
        pending = FactsChange.objects.filter(model=model, status=FactsChangeStatus.PENDING).first()
        if pending is not None:
            raise Conflict(
                f"A change of {model.name}'s policy facts ({', '.join(pending.fields)}) is waiting for approval; "
                "have it decided or cancel it before proposing another.",
                extra={"facts_change": facts_change_url(pending)},
            )
        person = author(actor)
        change = FactsChange.objects.create(
            model=model,
            changes={f: {"before": before[f], "after": after[f]} for f in waiting},
            reason=reason,
            proposed_by_id=person["created_by_id"],
            proposed_by_service_account_id=person["created_by_service_account_id"],
            proposed_by_name=actor.name[:255],
        )
        audit.record(
            action="facts_change.proposed",
            actor=actor,
            target=change,
            related=model,
            before={f: before[f] for f in waiting},
            after={f: after[f] for f in waiting},
            reason=reason,
        )
    applied = [f for f in after if f not in waiting]
    if applied:
        for f in applied:
            setattr(model, f, after[f])
        model.save(update_fields=[*applied, "updated_at"])
        audit.record(
            action="model.updated",
            actor=actor,
            target=model,
            before={f: before[f] for f in applied},
            after={f: after[f] for f in applied},
            reason=reason,
        )
        _supersede_pending(actor, model, [f for f in applied if f in FACT_FIELDS])
        read_by_policies = [f for f in applied if f in POLICY_INPUT_FIELDS]
        if read_by_policies:
            _model_updated(model, read_by_policies)
    return ModelUpdate(model=model, applied=applied, pending=waiting, facts_change=change)
