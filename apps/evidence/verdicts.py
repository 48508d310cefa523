"""What a finished run says, in a word a reader can act on: the verdicts of a bias report against the
model's fairness thresholds, the unresolved findings of a PII scan, and a version's declared accuracy
against the accuracy its bias report measured.

Reads only, computed from the stored summary and the model's current thresholds, so a page, the API
and the fairness policy pack (``apps/policies/packs/fairness.rego``) judge the same numbers the same
way: every sensitive attribute on its own **and** their intersection (when there are two or more)
must stay within each threshold; a threshold the model does not set defaults to 0.1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.conf import settings

from .choices import EvidenceKind, RunStatus
from .models import EvidenceRun, FindingReview, FindingVerdict

# The fairness metrics a model may set thresholds for, with the words the pages use.
FAIRNESS_METRICS = (
    ("demographic_parity_difference", "demographic parity difference"),
    ("equalized_odds_difference", "equalized odds difference"),
)
DEFAULT_THRESHOLD = 0.1
INTERSECTION_SEPARATOR = " × "


def thresholds_of(model) -> dict[str, dict]:
    """``{metric: {"value": limit, "default": bool}}`` for every fairness metric (0.1 where the model sets none)."""
    declared = dict(getattr(model, "fairness_thresholds", None) or {}) if model is not None else {}
    return {
        metric: {"value": float(declared[metric]), "default": False}
        if isinstance(declared.get(metric), int | float) and not isinstance(declared.get(metric), bool)
        else {"value": DEFAULT_THRESHOLD, "default": True}
        for metric, _ in FAIRNESS_METRICS
    }


def judged_reports(summary: dict) -> list[tuple[str, list[str], dict]]:
    """(attribute name, columns, report) for each sensitive column, then the intersection (if any)."""
    found = []
    for name, report in (summary.get("by_column") or {}).items():
        found.append((name, list(report.get("columns") or [name]), report))
    intersection = summary.get("intersection")
    if intersection:
        columns = list(intersection.get("columns") or [])
        found.append((INTERSECTION_SEPARATOR.join(columns), columns, intersection))
    return found


def _value(report: dict, metric: str) -> float | None:
    value = ((report.get("disparities") or {}).get(metric) or {}).get("value")
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


def bias_verdicts(summary: dict, model) -> list[dict]:
    """One verdict per (attribute or intersection, metric): measured value, threshold, pass or fail.

    A value that cannot be computed (no such disparity in the summary) fails: the report cannot show
    the attribute is within the threshold.
    """
    limits = thresholds_of(model)
    verdicts = []
    for attribute, columns, report in judged_reports(summary or {}):
        for metric, words in FAIRNESS_METRICS:
            value = _value(report, metric)
            limit = limits[metric]["value"]
            passed = value is not None and value <= limit
            verdicts.append(
                {
                    "attribute": attribute,
                    "columns": columns,
                    "intersection": len(columns) > 1,
                    "metric": metric,
                    "measured": value,
                    "threshold": limit,
                    "threshold_is_default": limits[metric]["default"],
                    "result": "pass" if passed else "fail",
                    "text": _verdict_text(words, value, limit, passed),
                }
            )
    return verdicts


def _verdict_text(words: str, value: float | None, limit: float, passed: bool) -> str:
    if value is None:
        return f"{words} not computed (threshold {limit:g})"
    return f"{words} {value:.3f} {'≤' if passed else '>'} {limit:g}"


@dataclass(frozen=True)
class Outcome:
    """A finished run's verdict in a few words, for badges: ``state`` is ok, warning or failed."""

    text: str
    state: str


def run_outcome(run) -> Outcome | None:
    """The badge text of a succeeded run ("PII: 3 unresolved", "Bias: 2 of 6 checks fail"); None otherwise.

    Reads the prefetched reviews (PII) and the version's model (bias): no extra query per run when
    the run came from ``selectors``.
    """
    if run.status != RunStatus.SUCCEEDED or not run.summary:
        return None
    if run.kind == EvidenceKind.PII_SCAN:
        state = review_state(run) or {}
        unresolved = state.get("unresolved_count", 0)
        if unresolved:
            return Outcome(f"PII: {unresolved} unresolved", "warning")
        if run.summary.get("has_pii"):
            return Outcome("PII: all resolved", "ok")
        return Outcome("PII: none found", "ok")
    if run.kind == EvidenceKind.BIAS:
        model = run.version.model if run.version_id else None
        verdicts = bias_verdicts(run.summary, model)
        failed = sum(1 for v in verdicts if v["result"] == "fail")
        if failed:
            return Outcome(f"Bias: {failed} of {len(verdicts)} checks fail", "failed")
        return Outcome(f"Bias: all {len(verdicts)} checks pass", "ok")
    if run.kind == EvidenceKind.EXPLAINABILITY and isinstance(run.summary.get("additivity"), dict):
        passed = run.summary["additivity"].get("passed")
        return Outcome("SHAP: additivity passed" if passed else "SHAP: additivity failed", "ok" if passed else "failed")
    return None


# --- PII findings by review ----------------------------------------------------------------


def finding_reviews(run: EvidenceRun) -> dict[str, FindingReview]:
    """The newest review of each reviewed finding of a PII scan (from the prefetched reviews)."""
    latest: dict[str, FindingReview] = {}
    for review in run.reviews.all():  # newest first
        latest.setdefault(review.finding, review)
    return latest


def review_state(run: EvidenceRun) -> dict | None:
    """A PII scan's findings split by their reviews: false positives are counted apart from the rest.

    ``unresolved`` are the findings not marked false positive; that is what policies read.
    None for other kinds and unfinished runs.
    """
    if run.kind != "pii_scan" or not run.summary:
        return None
    latest = finding_reviews(run)
    false_positives, confirmed, unresolved = [], [], []
    for finding in run.summary.get("findings", []):
        review = latest.get(finding.get("id"))
        if review is not None and review.verdict == FindingVerdict.FALSE_POSITIVE:
            false_positives.append(finding.get("id"))
        else:
            unresolved.append(finding.get("id"))
            if review is not None:
                confirmed.append(finding.get("id"))
    return {
        "unresolved": unresolved,
        "false_positives": false_positives,
        "confirmed": confirmed,
        "unresolved_count": len(unresolved),
    }


# --- declared against measured accuracy ------------------------------------------------------

ACCURACY_KEYS = ("accuracy", "acc")


def declared_accuracy(metrics: dict | None) -> float | None:
    """The accuracy a version's CI declared in ``metrics`` (``accuracy`` or ``acc``, 0..1), or None."""
    for key in ACCURACY_KEYS:
        value = (metrics or {}).get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1:
            return float(value)
    return None


def accuracy_check(version, run) -> dict | None:
    """Declared accuracy against the overall accuracy ``run`` (a succeeded bias report) measured.

    ``{"declared", "measured", "difference", "tolerance", "mismatch", "run", "text"}``; None when
    the version declares no accuracy or there is no measurement. The tolerance is
    ``ASSAY_METRIC_TOLERANCE`` (absolute, default 0.05).
    """
    declared = declared_accuracy(getattr(version, "metrics", None))
    if declared is None or run is None or run.status != RunStatus.SUCCEEDED:
        return None
    measured = ((run.summary or {}).get("overall") or {}).get("accuracy")
    if isinstance(measured, bool) or not isinstance(measured, int | float):
        return None
    tolerance = float(settings.ASSAY_METRIC_TOLERANCE)
    difference = float(measured) - declared
    mismatch = abs(difference) > tolerance
    text = f"declared accuracy {declared:.3f}, measured {measured:.3f} on {run.dataset.name}: " + (
        f"off by {abs(difference):.3f}, more than the tolerance {tolerance:g}"
        if mismatch
        else f"within the tolerance {tolerance:g}"
    )
    return {
        "declared": declared,
        "measured": float(measured),
        "difference": round(difference, 6),
        "tolerance": tolerance,
        "mismatch": mismatch,
        "run": str(run.public_id),
        "text": text,
    }
