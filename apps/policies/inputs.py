"""The input document packs are evaluated on (``assay.policy-input/v1``), built from the database.

Its schema is documented in ``apps/policies/packs/README.md`` (custom packs are written
against it); change both together. Reads only: no permission check (callers check).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import connection
from django.db.models import Q

from apps.audit.models import AuditSeal
from apps.evidence.choices import EvidenceKind, RunStatus
from apps.evidence.models import EvidenceRun, FindingReview, FindingVerdict
from apps.evidence.verdicts import INTERSECTION_SEPARATOR
from apps.rbac.models import RoleBinding, ScopeType
from apps.rbac.roles import Role
from apps.registry.models import Dataset, ModelVersion

SCHEMA = "assay.policy-input/v1"

# Roles whose global grants are oversight by design (they span every team): not "broad access".
OVERSIGHT_ROLES = frozenset({Role.ADMIN, Role.AUDITOR, Role.COMPLIANCE_OFFICER})


def canonical_sha256(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def person_key(kind_id: Any) -> list | None:
    if not kind_id:
        return None
    kind, ident = kind_id
    return [str(kind), ident]


def _latest_succeeded(runs: list[EvidenceRun]) -> EvidenceRun | None:
    done = [r for r in runs if r.status == RunStatus.SUCCEEDED and r.summary]
    return max(done, key=lambda r: (r.finished_at or r.created_at, r.pk), default=None)


def _unresolved(run: EvidenceRun, reviews: list[FindingReview]) -> list[str]:
    latest: dict[str, FindingReview] = {}
    for review in sorted(reviews, key=lambda r: (r.created_at, r.pk), reverse=True):
        latest.setdefault(review.finding, review)
    return [
        f.get("id")
        for f in run.summary.get("findings", [])
        if not (f.get("id") in latest and latest[f.get("id")].verdict == FindingVerdict.FALSE_POSITIVE)
    ]


def _pii_scan(run: EvidenceRun, reviews: list[FindingReview], seen: list[dict], subject: str) -> dict:
    summary = run.summary
    unresolved = _unresolved(run, reviews)
    roles = {c.get("name"): c.get("role") for c in summary.get("columns", [])}
    findings = [
        {
            "id": f.get("id"),
            "column": f.get("column"),
            "column_role": roles.get(f.get("column")),
            "entity_type": f.get("entity_type"),
            "rows": f.get("rows"),
            "unresolved": f.get("id") in unresolved,
        }
        for f in summary.get("findings", [])
    ]
    review_sha = canonical_sha256(sorted(unresolved))
    seen.append(
        {
            "run": str(run.public_id),
            "kind": run.kind,
            "subject": subject,
            "summary_sha256": canonical_sha256(summary),
            "review_sha256": review_sha,
        }
    )
    return {
        "run": str(run.public_id),
        "schema": summary.get("schema"),
        "has_pii": bool(summary.get("has_pii")),
        "findings": findings,
        "entity_types": sorted({f["entity_type"] for f in findings if f["unresolved"]}),
        "review_state": {"unresolved": unresolved, "unresolved_count": len(unresolved)},
        "scrubbed_dataset": summary.get("scrubbed_dataset"),
    }


def _disparities(report: dict) -> dict:
    disparities = report.get("disparities") or {}
    return {
        "demographic_parity_difference": (disparities.get("demographic_parity_difference") or {}).get("value"),
        "equalized_odds_difference": (disparities.get("equalized_odds_difference") or {}).get("value"),
        "n_groups": report.get("n_groups"),
    }


def _bias(run: EvidenceRun) -> dict:
    summary = run.summary
    by_column = {name: _disparities(report) for name, report in (summary.get("by_column") or {}).items()}
    intersection = None
    if summary.get("intersection"):
        columns = list(summary["intersection"].get("columns") or [])
        intersection = {
            "name": INTERSECTION_SEPARATOR.join(columns),
            "columns": columns,
            **_disparities(summary["intersection"]),
        }
    return {
        "run": str(run.public_id),
        "schema": summary.get("schema"),
        "n_rows": summary.get("n_rows"),
        "sensitive_columns": summary.get("sensitive_columns", []),
        "by_column": by_column,
        "intersection": intersection,
    }


def _explain(run: EvidenceRun) -> dict:
    summary = run.summary
    return {
        "run": str(run.public_id),
        "schema": summary.get("schema"),
        "method": summary.get("method"),
        "n_rows_explained": summary.get("n_rows_explained"),
        "feature_names": summary.get("feature_names", []),
    }


def _access(version: ModelVersion) -> dict:
    """Who can read the model: named teams (team or model grants) and broad global grants."""
    model = version.model
    # Only the bindings that can reach this model: global ones, its team's and its own (not every binding).
    bindings = RoleBinding.objects.select_related("team", "user", "service_account").filter(
        Q(scope_type=ScopeType.GLOBAL)
        | Q(scope_type=ScopeType.TEAM, scope_team_id=model.owner_team_id)
        | Q(scope_type=ScopeType.MODEL, scope_model_id=model.pk)
    )
    teams, broad = {model.owner_team.name}, []
    for b in bindings:
        if b.scope_type == ScopeType.GLOBAL:
            if b.role not in OVERSIGHT_ROLES:
                broad.append({"subject": b.subject_label, "role": b.role})
        elif b.team_id and (
            (b.scope_type == ScopeType.TEAM and b.scope_team_id == model.owner_team_id)
            or (b.scope_type == ScopeType.MODEL and b.scope_model_id == model.pk)
        ):
            teams.add(b.team.name)
    return {"teams": sorted(teams), "global_grants": broad, "broad": bool(broad)}


def _audit_facts() -> dict:
    """The trail is enabled when its append-only triggers are installed; the last sealed event."""
    if connection.vendor == "postgresql":
        sql = "SELECT count(*) FROM pg_trigger WHERE tgname = 'audit_event_append_only'"
    else:
        sql = "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name = 'audit_event_no_delete'"
    with connection.cursor() as cursor:
        cursor.execute(sql)
        enabled = bool(cursor.fetchone()[0])
    last = AuditSeal.objects.order_by("-seq").values("seq", "sealed_at").first()
    return {
        "enabled": enabled,
        "last_sealed_seq": last["seq"] if last else None,
        "last_sealed_at": last["sealed_at"].isoformat() if last and last["sealed_at"] else None,
    }


def _dataset(dataset: Dataset, role: str, scans: dict, seen: list[dict]) -> dict:
    run, reviews = scans.get(dataset.pk, (None, []))
    return {
        "id": dataset.pk,
        "name": dataset.name,
        "role": role,
        "sha256": dataset.sha256,
        "status": dataset.status,
        "columns": [
            {"name": c.get("name"), "role": c.get("role"), "type": c.get("type")} for c in dataset.schema or []
        ],
        "scrubbed_from": {"id": dataset.source_id, "name": dataset.source.name} if dataset.source_id else None,
        "pii_scan": _pii_scan(run, reviews, seen, f"dataset {dataset.name}") if run is not None else None,
    }


def build_input(*, version: ModelVersion, environment: dict, release: dict | None) -> tuple[dict, list[dict]]:
    """(input document, evidence seen) for ``version`` in ``environment``, with the release context if any."""
    version = (
        ModelVersion.objects.select_related("model", "model__owner_team", "evaluation_dataset__source")
        .prefetch_related("training_datasets__source")
        .get(pk=version.pk)
    )
    model = version.model
    datasets = [(d, "training") for d in version.training_datasets.all()]
    if version.evaluation_dataset_id:
        datasets.append((version.evaluation_dataset, "evaluation"))

    seen: list[dict] = []
    runs = list(
        EvidenceRun.objects.filter(version=version, status=RunStatus.SUCCEEDED).exclude(kind=EvidenceKind.PII_SCAN)
    )
    dataset_ids = {d.pk for d, _ in datasets}
    pii_runs = list(
        EvidenceRun.objects.filter(
            dataset_id__in=dataset_ids, version__isnull=True, kind=EvidenceKind.PII_SCAN, status=RunStatus.SUCCEEDED
        )
    )
    reviews_by_run: dict[int, list] = {}
    for review in FindingReview.objects.filter(run__in=pii_runs):
        reviews_by_run.setdefault(review.run_id, []).append(review)
    scans = {}
    for dataset_id in dataset_ids:
        latest = _latest_succeeded([r for r in pii_runs if r.dataset_id == dataset_id])
        if latest is not None:
            scans[dataset_id] = (latest, reviews_by_run.get(latest.pk, []))

    evidence: dict[str, Any] = {"bias": None, "explainability": None}
    subject = f"{model.name} v{version.number}"
    for kind, reader in ((EvidenceKind.BIAS, _bias), (EvidenceKind.EXPLAINABILITY, _explain)):
        latest = _latest_succeeded([r for r in runs if r.kind == kind])
        if latest is not None:
            evidence[kind.value] = reader(latest)
            seen.append(
                {
                    "run": str(latest.public_id),
                    "kind": latest.kind,
                    "subject": subject,
                    "summary_sha256": canonical_sha256(latest.summary),
                }
            )

    author = ["user", version.created_by_id] if version.created_by_id else None
    document = {
        "schema": SCHEMA,
        "model": {
            "name": model.name,
            "team": model.owner_team.name,
            "risk_tier": model.risk_tier,
            "data_categories": list(model.data_categories or []),
            "jurisdictions": [str(j).upper() for j in model.jurisdictions or []],
            "description": model.description,
            "intended_use": model.intended_use,
            "limitations": model.limitations,
            "automated_decisions": model.automated_decisions,
            "human_review_path": model.human_review_path,
            "dpia_reference": model.dpia_reference,
            "human_oversight": model.human_oversight,
            "minimisation_justification": model.minimisation_justification,
            "fairness_thresholds": dict(model.fairness_thresholds or {}),
        },
        "version": {
            "number": version.number,
            "sha256": version.sha256,
            "format": version.format,
            "status": version.status,
            "size": version.size,
            "metrics": version.metrics or {},
            "model_card": version.model_card or {},
            "lineage": {
                "source_repository": version.source_repository,
                "source_commit": version.source_commit,
                "ci_run_url": version.ci_run_url,
                "training_datasets": [d.pk for d, role in datasets if role == "training"],
                "evaluation_dataset": version.evaluation_dataset_id,
            },
            "author": author,
            "created_at": version.created_at.isoformat() if version.created_at else None,
        },
        "datasets": [_dataset(d, role, scans, seen) for d, role in datasets],
        "evidence": evidence,
        "access": _access(version),
        "audit": _audit_facts(),
        "environment": environment_part(environment),
        "release": release_part(release),
    }
    return document, seen


# The version and dataset facts approvals are bound to besides the whole ``model`` part: what the
# author declares and the packs read. Not the version's status or the datasets' scans (the
# evidence digests cover scans; a status change shows in the rules), not ``access`` or ``audit``.
BOUND_VERSION_FACTS = ("number", "sha256", "format", "metrics", "model_card", "lineage", "author")
BOUND_DATASET_FACTS = ("id", "name", "role", "sha256", "columns", "scrubbed_from")


def bound_facts(document: dict) -> dict:
    """The model facts of an input document that approvals are bound to (``PolicyDecision.facts_sha256``).

    Every field of the ``model`` part (risk tier, data categories, jurisdictions, fairness
    thresholds, DPIA reference, human-review path, oversight note, minimisation justification,
    automated decisions, intended use, ...), the version's declared facts and its datasets' schemas:
    a change to any of them is a different basis for an approval.
    """
    version = document.get("version") or {}
    return {
        "model": document.get("model") or {},
        "version": {key: version.get(key) for key in BOUND_VERSION_FACTS},
        "datasets": sorted(
            ({key: d.get(key) for key in BOUND_DATASET_FACTS} for d in document.get("datasets") or []),
            key=lambda d: (str(d.get("role")), str(d.get("id"))),
        ),
    }


def environment_part(environment: dict) -> dict:
    """The document's ``environment`` part."""
    return {"name": str(environment.get("name", "")), "production": bool(environment.get("production"))}


def release_part(release: dict | None) -> dict | None:
    """The document's ``release`` part for a release context (None: no request yet)."""
    if release is None:
        return None
    return {
        "change_reference": release.get("change_reference") or "",
        "requested_by": person_key(release.get("requested_by")),
        "emergency": bool(release.get("emergency")),
        "approvals": [
            {
                "person": person_key(a.get("person")),
                "roles": list(a.get("roles") or []),
                "decision": a.get("decision", "approve"),
            }
            for a in release.get("approvals") or []
        ],
    }


# An input document for checking an uploaded pack's shape (and for the packs' guide): a high-risk model
# in production with one training dataset, no evidence yet, and a release awaiting approvals.
SAMPLE_INPUT: dict = {
    "schema": SCHEMA,
    "model": {
        "name": "credit-scoring",
        "team": "credit",
        "risk_tier": "high",
        "data_categories": ["personal", "financial"],
        "jurisdictions": ["EU", "US"],
        "description": "Scores loan applications",
        "intended_use": "Pre-screening of consumer loan applications",
        "limitations": "Not validated for business loans",
        "automated_decisions": True,
        "human_review_path": "",
        "dpia_reference": "",
        "human_oversight": "",
        "minimisation_justification": "",
        "fairness_thresholds": {"demographic_parity_difference": 0.1, "equalized_odds_difference": 0.1},
    },
    "version": {
        "number": 3,
        "sha256": "0" * 64,
        "format": "onnx",
        "status": "ready",
        "size": 1024,
        "metrics": {"auc": 0.81},
        "model_card": {},
        "lineage": {
            "source_repository": "https://git.example.com/credit",
            "source_commit": "abc123",
            "ci_run_url": "",
            "training_datasets": [1],
            "evaluation_dataset": None,
        },
        "author": ["user", 1],
        "created_at": "2025-01-01T00:00:00+00:00",
    },
    "datasets": [
        {
            "id": 1,
            "name": "applications-2024",
            "role": "training",
            "sha256": "1" * 64,
            "status": "ready",
            "columns": [{"name": "income", "role": "feature", "type": "double"}],
            "scrubbed_from": None,
            "pii_scan": None,
        }
    ],
    "evidence": {"bias": None, "explainability": None},
    "access": {"teams": ["credit"], "global_grants": [], "broad": False},
    "audit": {"enabled": True, "last_sealed_seq": 10, "last_sealed_at": "2025-01-01T00:00:00+00:00"},
    "environment": {"name": "production", "production": True},
    "release": {
        "change_reference": "CHG-1",
        "requested_by": ["user", 2],
        "emergency": False,
        "approvals": [],
    },
}
