"""Registered models: create, and edit everything but the name."""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction

from apps.accounts.models import Team
from apps.audit import services as audit
from apps.core.errors import Conflict, NotFound, ValidationFailed
from apps.core.principals import Principal
from apps.jobs import events
from apps.rbac import services as rbac

from ..choices import DataCategory, RiskTier
from ..models import RegisteredModel
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
    team = resolve_team(owner_team)
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


@transaction.atomic
def model_update(*, actor: Principal, name: str, changes: dict) -> RegisteredModel:
    """Change a model's descriptive fields; its name never changes. Audited ``model.updated`` with before/after.

    When a field changed, publishes ``model.updated`` (the model's id and the changed fields' names), so
    the decisions that read the model are judged again; an edit that changes nothing publishes nothing.
    """
    model = RegisteredModel.objects.select_for_update().select_related("owner_team").filter(name=name).first()
    if model is None:
        raise NotFound(f"No model named {name!r}.")
    rbac.require(actor, "registry.model_edit", model, audit_action="model.updated")
    if "name" in changes and changes["name"] != model.name:
        raise ValidationFailed(
            "A model's name is its permanent key and cannot be changed.", errors={"name": ["Immutable."]}
        )
    unknown = sorted(set(changes) - set(MODEL_EDITABLE) - {"name"})
    if unknown:
        raise ValidationFailed(f"Fields that cannot be changed: {', '.join(unknown)}.")
    cleaners = {
        "risk_tier": _risk_tier,
        "data_categories": lambda v: _choices(v, DataCategory, "data_categories"),
        "jurisdictions": lambda v: _strings(v, "jurisdictions"),
        "default_evidence": _evidence_kinds,
        "automated_decisions": bool,
        "fairness_thresholds": _fairness_thresholds,
    }
    before, after = {}, {}
    for field in MODEL_EDITABLE:
        if field not in changes:
            continue
        value = cleaners.get(field, lambda v: v or "")(changes[field])
        if getattr(model, field) != value:
            before[field] = getattr(model, field)
            after[field] = value
            setattr(model, field, value)
    if after:
        model.save(update_fields=[*after, "updated_at"])
        audit.record(action="model.updated", actor=actor, target=model, before=before, after=after)
        events.publish("model.updated", payload={"model_id": model.pk, "fields": sorted(after)}, target=model)
    return model
