"""Which changes to a model's policy facts loosen what its gate reads.

The shipped packs (``apps/policies/packs``) read these model fields from the input document
(``apps/policies/inputs.py``). A change that can only add obligations applies at once; a change
that could let a pack pass where it failed, or stop a pack from applying, *loosens* and waits for a
compliance officer (``apps.registry.services.facts``). When in doubt a change loosens. The rules,
field by field, are documented in ``docs/governance-facts.md``; change both together.
"""

from __future__ import annotations

from typing import Any

from .choices import RiskTier

# Every model field a shipped pack reads, besides the model's name and team (which never change here).
FACT_FIELDS = (
    "risk_tier",
    "data_categories",
    "jurisdictions",
    "automated_decisions",
    "fairness_thresholds",
    "dpia_reference",
    "human_review_path",
    "human_oversight",
    "minimisation_justification",
    "intended_use",
    "limitations",
)

# What the policy input document holds of a model besides its name and team: a change of any of these
# can change a decision (custom packs may read the description too), so it re-judges live releases.
POLICY_INPUT_FIELDS = (*FACT_FIELDS, "description")

# Lowest to highest: the EU AI Act pack prohibits "unacceptable" and obliges "high"; GDPR treats
# "high" and "unacceptable" as high-risk processing.
RISK_ORDER = (RiskTier.MINIMAL, RiskTier.LIMITED, RiskTier.HIGH, RiskTier.UNACCEPTABLE)

# The fairness pack's threshold for a metric the model sets none for.
DEFAULT_FAIRNESS_THRESHOLD = 0.1

# Text a pack reads as "documented" when it is not blank (GDPR Art. 22(3), 35 and 30, EU AI Act
# Art. 11 and 14). Filling a blank one adds a record; clearing or replacing a recorded one can
# empty it in substance ("n/a"), so it waits.
DOCUMENTED_TEXT = ("dpia_reference", "human_review_path", "human_oversight", "intended_use", "limitations")


def _rank(tier: Any) -> int:
    return RISK_ORDER.index(tier) if tier in RISK_ORDER else -1


def _text(value: Any) -> str:
    return (value or "").strip()


def _thresholds_loosen(before: dict, after: dict) -> bool:
    """A metric's threshold in force rises (an unset one is the pack's default), or every threshold goes
    (the fairness pack then applies to high-risk models only)."""
    before, after = before or {}, after or {}
    if before and not after:
        return True
    metrics = set(before) | set(after)
    return any(after.get(m, DEFAULT_FAIRNESS_THRESHOLD) > before.get(m, DEFAULT_FAIRNESS_THRESHOLD) for m in metrics)


def loosens(field: str, before: Any, after: Any) -> bool:
    """True when changing ``field`` from ``before`` to ``after`` (both cleaned) could loosen a gate."""
    if field not in FACT_FIELDS or before == after:
        return False
    if field == "risk_tier":
        return _rank(after) < _rank(before)
    if field == "data_categories":
        return bool(set(before or []) - set(after or []))
    if field == "jurisdictions":
        return bool({str(j).upper() for j in before or []} - {str(j).upper() for j in after or []})
    if field == "automated_decisions":
        return bool(before) and not after
    if field == "fairness_thresholds":
        return _thresholds_loosen(before, after)
    if field == "minimisation_justification":
        # GDPR Art. 5(1)(c): a justification turns the blocking minimisation violation into a warning,
        # so setting or rewording one is a waiver; clearing one is refused by the same rule as any
        # other documented fact.
        return _text(before) != _text(after)
    if field in DOCUMENTED_TEXT:
        return bool(_text(before)) and _text(before) != _text(after)
    return True
