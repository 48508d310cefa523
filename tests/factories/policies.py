"""Versions built to pass or fail the shipped packs, with evidence runs whose summaries follow the real schemas.

Summaries are written through the ORM (computing them would be slow); their shapes are those of
``assay.bias/v1``, ``assay.explain/v1`` and ``assay.pii/v1`` (see ``worker/engines``).
"""

from __future__ import annotations

import uuid

from django.utils import timezone

from apps.evidence.choices import EvidenceKind, RunStatus
from apps.evidence.models import EvidenceRun, FindingReview
from apps.registry.models import Dataset, ModelVersion, RegisteredModel

from .registry import DatasetFactory, ModelVersionFactory, RegisteredModelFactory


def _disparity(value: float) -> dict:
    return {"value": value, "groups": ["F", "M"]}


def bias_summary(*, dp: float = 0.05, eo: float = 0.04, columns=("sex",), intersection_dp: float | None = None) -> dict:
    """An ``assay.bias/v1`` summary whose every sensitive column has these disparities.

    With several columns, ``intersection_dp`` adds their intersection with that demographic parity
    difference (and the columns' equalized odds difference).
    """
    report = {
        "columns": [],
        "n_groups": 2,
        "groups": [
            {"label": "F", "name": "F", "count": 200, "tn": 90, "fp": 10, "fn": 20, "tp": 80, "selection_rate": 0.45},
            {"label": "M", "name": "M", "count": 200, "tn": 85, "fp": 15, "fn": 15, "tp": 85, "selection_rate": 0.5},
        ],
        "disparities": {
            "demographic_parity_difference": _disparity(dp),
            "demographic_parity_ratio": _disparity(0.9),
            "equalized_odds_difference": _disparity(eo),
            "equalized_odds_ratio": _disparity(0.9),
            "true_positive_rate_difference": _disparity(eo),
            "true_positive_rate_ratio": _disparity(0.9),
            "false_positive_rate_difference": _disparity(eo / 2),
            "false_positive_rate_ratio": _disparity(0.9),
        },
        "reference": None,
    }
    return {
        "schema": "assay.bias/v1",
        "n_rows": 400,
        "positive_label": 1,
        "sensitive_columns": list(columns),
        "overall": {"count": 400, "selection_rate": 0.475, "accuracy": 0.85},
        "by_column": {name: {**report, "columns": [name]} for name in columns},
        "intersection": None
        if intersection_dp is None
        else {
            **report,
            "columns": list(columns),
            "disparities": {**report["disparities"], "demographic_parity_difference": _disparity(intersection_dp)},
        },
    }


def explain_summary() -> dict:
    """An ``assay.explain/v1`` summary (trimmed to the fields the policies read and a few more)."""
    return {
        "schema": "assay.explain/v1",
        "method": "tree",
        "explainer": "shap.TreeExplainer",
        "output": "probability",
        "model": {"format": "onnx", "type": "classifier", "positive_class": 1},
        "feature_names": ["income", "age"],
        "n_rows": 400,
        "n_rows_explained": 200,
        "seed": 0,
        "base_value": 0.4,
        "global": [{"feature": "income", "mean_abs_shap": 0.2}, {"feature": "age", "mean_abs_shap": 0.1}],
        "additivity": {"max_abs_error": 0.0, "ok": True},
    }


def pii_summary(findings: list[tuple[str, str, str]] = ()) -> dict:
    """An ``assay.pii/v1`` summary with these (column, role, ENTITY_TYPE) findings."""
    columns = {}
    for column, role, entity in findings:
        columns.setdefault(
            column,
            {
                "name": column,
                "role": role,
                "kind": "structured",
                "type": "string",
                "n_values": 100,
                "classified_from_sample": 100,
                "entities": [],
            },
        )
        columns[column]["entities"].append(
            {
                "entity_type": entity,
                "count": 100,
                "rows": 100,
                "share_of_rows": 1.0,
                "score": {"min": 1.0, "mean": 1.0, "max": 1.0},
                "examples": ["****"],
            }
        )
    listed = [
        {
            "id": f"{c}:{e}",
            "column": c,
            "entity_type": e,
            "count": 100,
            "rows": 100,
            "share_of_rows": 1.0,
            "max_score": 1.0,
        }
        for c, _, e in findings
    ]
    return {
        "schema": "assay.pii/v1",
        "engine": {"nlp": "patterns", "limitations": []},
        "parameters": {"entities": ["EMAIL_ADDRESS", "CREDIT_CARD"], "score_threshold": 0.5},
        "n_rows": 100,
        "columns": list(columns.values()),
        "skipped_columns": [],
        "findings": listed,
        "totals": {},
        "rows_with_pii": 100 if listed else 0,
        "columns_with_pii": sorted(columns),
        "has_pii": bool(listed),
    }


def evidence_run(
    *,
    kind: str,
    summary: dict,
    version: ModelVersion | None = None,
    dataset: Dataset | None = None,
    status: str = RunStatus.SUCCEEDED,
) -> EvidenceRun:
    subject_team = version.model.owner_team if version else dataset.owner_team
    now = timezone.now()
    return EvidenceRun.objects.create(
        kind=kind,
        version=version,
        dataset=dataset,
        owner_team=subject_team,
        model=version.model if version else None,
        status=status,
        summary=summary if status == RunStatus.SUCCEEDED else None,
        reuse_key=uuid.uuid4().hex,
        started_at=now,
        finished_at=now,
    )


def bias_run(version: ModelVersion, **kwargs) -> EvidenceRun:
    return evidence_run(kind=EvidenceKind.BIAS, summary=bias_summary(**kwargs), version=version)


def explain_run(version: ModelVersion) -> EvidenceRun:
    return evidence_run(kind=EvidenceKind.EXPLAINABILITY, summary=explain_summary(), version=version)


def pii_run(dataset: Dataset, findings=()) -> EvidenceRun:
    return evidence_run(kind=EvidenceKind.PII_SCAN, summary=pii_summary(list(findings)), dataset=dataset)


def mark_false_positive(run: EvidenceRun, finding: str) -> FindingReview:
    return FindingReview.objects.create(run=run, finding=finding, verdict="false_positive", reason="test data")


def compliant_model(**overrides) -> RegisteredModel:
    """A model whose every documented fact is filled in (each pack's model-level rules pass)."""
    fields = {
        "risk_tier": "limited",
        "data_categories": ["personal"],
        "jurisdictions": ["EU"],
        "intended_use": "Pre-screening of consumer loan applications",
        "limitations": "Not validated for business loans",
        "automated_decisions": True,
        "human_review_path": "Applicants may ask for a credit officer's review at review@example.test",
        "dpia_reference": "DPIA-2025-001",
        "human_oversight": "A credit officer reviews every declined application and can override it",
        "fairness_thresholds": {"demographic_parity_difference": 0.1, "equalized_odds_difference": 0.1},
    }
    fields.update(overrides)
    return RegisteredModelFactory(**fields)


def compliant_version(model: RegisteredModel | None = None, *, evidence: bool = True, **overrides) -> ModelVersion:
    """A ready version with metrics, a model card, a scanned training dataset (no PII) and, with
    ``evidence``, a bias and an explainability report within the model's thresholds."""
    model = model or compliant_model()
    fields = {
        "model": model,
        "metrics": {"auc": 0.81},
        "model_card": {"intended_use": model.intended_use, "limitations": model.limitations},
    }
    fields.update(overrides)
    version = ModelVersionFactory(**fields)
    training = DatasetFactory(owner_team=model.owner_team, status="ready", sha256="a" * 64)
    version.training_datasets.add(training)
    pii_run(training)
    if evidence:
        bias_run(version)
        explain_run(version)
    return version
