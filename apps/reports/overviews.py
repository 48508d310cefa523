"""What the model report and the period report say, as their reader may see it.

``model_content``: a model's facts, every version (artifact digest, lineage, evidence) and every
release requested in the period, with the EU AI Act Annex IV outline for a high-risk model and a
GDPR Art. 30 entry for a model that processes personal data (``apps.reports.regulations``).

``period_content``: every release requested in the period (per team or everywhere), the refusals
among them, the break-glass releases and their reviews, a SOX change-management log of the
production releases; for the whole installation also the role changes and the denied attempts
recorded in the audit trail.
"""

from __future__ import annotations

from datetime import datetime

from apps.accounts.models import Team
from apps.audit.models import AuditEvent
from apps.core.principals import Principal
from apps.evidence import verdicts
from apps.evidence.models import EvidenceRun
from apps.rbac import services as rbac
from apps.registry.models import Dataset, ModelVersion, RegisteredModel
from apps.releases import selectors as releases
from apps.releases.models import ReleaseRequest

from . import regulations
from .content import Content, as_json, person_name

DENIED_LISTED = 200  # a period report lists this many denied attempts and counts the rest


def _in_period(qs, since: datetime | None, until: datetime | None, field: str = "created_at"):
    if since is not None:
        qs = qs.filter(**{f"{field}__gte": since})
    if until is not None:
        qs = qs.filter(**{f"{field}__lt": until})
    return qs


def _dataset(d: Dataset, visible: set) -> dict:
    if d.pk not in visible:
        return {"name": rbac.HIDDEN_DATASET, "sha256": ""}
    return {"name": d.name, "sha256": d.sha256}


def _release_row(r: ReleaseRequest) -> dict:
    decision = r.decision if isinstance(r.decision, dict) else {}
    approvals = [a for a in r.approvals.all() if not a.void]
    return {
        "id": str(r.public_id),
        "model": r.model.name,
        "version": r.version.number,
        "team": r.owner_team.name,
        "environment": r.environment.name,
        "production": r.environment.production,
        "status": r.status,
        "emergency": r.emergency,
        "requested_by": person_name(r.requested_by, r.requested_by_service_account),
        "requested_at": r.created_at,
        "change_reference": r.change_reference,
        "allowed": decision.get("allow"),
        "blocking": [v.get("rule") for v in decision.get("violations", []) if v.get("severity") == "blocking"],
        "approvals": [
            {
                "approver": person_name(a.approver, a.approver_service_account),
                "decision": a.decision,
                "at": a.created_at,
            }
            for a in approvals
        ],
        "approved_at": r.approved_at,
        "closed_reason": r.closed_reason,
        "binding_digest": r.binding_digest,
        "review": getattr(r, "review", None) and {"status": r.review.status, "closed_at": r.review.closed_at},
    }


def _releases(reader: Principal):
    base = ReleaseRequest.objects.select_related(
        "model", "version", "owner_team", "environment", "requested_by", "requested_by_service_account", "review"
    ).prefetch_related(releases.approvals_named())
    return rbac.restrict(reader, base, "releases.view").order_by("created_at", "id")


def _model_facts(model: RegisteredModel) -> dict:
    return {
        "name": model.name,
        "team": model.owner_team.name,
        "risk_tier": model.risk_tier,
        "data_categories": list(model.data_categories or []),
        "jurisdictions": list(model.jurisdictions or []),
        "intended_use": model.intended_use,
        "limitations": model.limitations,
        "automated_decisions": model.automated_decisions,
        "human_review_path": model.human_review_path,
        "human_oversight": model.human_oversight,
        "dpia_reference": model.dpia_reference,
        "fairness_thresholds": model.fairness_thresholds,
    }


def model_content(
    *, reader: Principal, model: RegisteredModel, since: datetime | None, until: datetime | None
) -> Content:
    facts = _model_facts(model)
    versions_qs = (
        ModelVersion.objects.filter(model=model)
        .select_related("created_by", "created_by_service_account", "evaluation_dataset")
        .prefetch_related("training_datasets")
        .order_by("number")
    )
    versions = list(versions_qs)
    dataset_pks = {d.pk for v in versions for d in v.training_datasets.all()} | {
        v.evaluation_dataset_id for v in versions if v.evaluation_dataset_id
    }
    visible = rbac.visible_pks(reader, Dataset, dataset_pks, "registry.view")
    runs: dict[int, list[dict]] = {}
    for run in EvidenceRun.objects.filter(version__model=model).order_by("created_at", "id"):
        outcome = verdicts.run_outcome(run)
        runs.setdefault(run.version_id, []).append(
            {
                "kind": run.kind,
                "run": str(run.public_id),
                "status": run.status,
                "outcome": outcome.text if outcome else "",
                "finished_at": run.finished_at,
            }
        )
    version_rows = [
        {
            "number": v.number,
            "sha256": v.sha256,
            "format": v.format,
            "status": v.status,
            "created_at": v.created_at,
            "created_by": person_name(v.created_by, v.created_by_service_account),
            "training_datasets": [_dataset(d, visible) for d in v.training_datasets.all()],
            "evaluation_dataset": _dataset(v.evaluation_dataset, visible) if v.evaluation_dataset_id else None,
            "metrics": v.metrics,
            "source_repository": v.source_repository,
            "source_commit": v.source_commit,
            "evidence": runs.get(v.pk, []),
        }
        for v in versions
    ]
    release_rows = [_release_row(r) for r in _in_period(_releases(reader).filter(model=model), since, until)]
    context = {"model": facts, "versions": version_rows, "releases": release_rows}
    records = {
        "records/model.json": as_json(facts),
        "records/versions.json": as_json(version_rows),
        "records/releases.json": as_json(release_rows),
    }
    if model.risk_tier == "high":
        context["annex_iv"] = regulations.annex_iv(model=facts, versions=version_rows, releases=release_rows)
        records["records/regulations/eu-ai-act-annex-iv.json"] = as_json(context["annex_iv"])
    if regulations.processes_personal_data(facts):
        context["article_30"] = regulations.article_30(model=facts, versions=version_rows)
        records["records/regulations/gdpr-article-30.json"] = as_json(context["article_30"])
    return Content(context=context, records=records)


def period_content(*, reader: Principal, team: Team | None, since: datetime | None, until: datetime | None) -> Content:
    qs = _in_period(_releases(reader), since, until)
    if team is not None:
        qs = qs.filter(owner_team=team)
    rows = [_release_row(r) for r in qs]
    refusals = [
        r
        for r in rows
        if r["allowed"] is False or r["status"] == "rejected" or any(a["decision"] == "reject" for a in r["approvals"])
    ]
    emergencies = [r for r in rows if r["emergency"]]
    # SOX change management: every change to production, who asked, who approved, its change reference
    changes = [r for r in rows if r["production"]]
    context = {
        "team": team.name if team else "",
        "releases": rows,
        "refusals": refusals,
        "emergencies": emergencies,
        "changes": changes,
        "role_changes": [],
        "denied": [],
        "denied_total": 0,
        "everywhere": team is None,
    }
    if team is None:  # the trail spans every team: only a report on everything lists it
        events = _in_period(AuditEvent.objects.all(), since, until, field="occurred_at").order_by("id")
        context["role_changes"] = [
            _event_row(e) for e in events.filter(action__in=("role_binding.created", "role_binding.deleted"))
        ]
        denied = events.filter(outcome="denied")
        context["denied_total"] = denied.count()
        context["denied"] = [_event_row(e) for e in denied[:DENIED_LISTED]]
    records = {
        "records/releases.json": as_json(rows),
        "records/sox-change-log.json": as_json(changes),
    }
    if team is None:
        records["records/role-changes.json"] = as_json(context["role_changes"])
        records["records/denied-attempts.json"] = as_json(context["denied"])
    return Content(context=context, records=records)


def _event_row(e: AuditEvent) -> dict:
    return {
        "seq": e.seq,
        "occurred_at": e.occurred_at,
        "actor": e.actor_name or f"{e.actor_type}:{e.actor_id}",
        "action": e.action,
        "target": e.target_name or f"{e.target_type}:{e.target_id}",
        "reason": e.reason,
        "after": e.after,
        "before": e.before,
    }


def access_review_content(*, review) -> Content:
    """The review as it stands: every grant with who granted it, its last use, and the decision on it."""
    items = [
        {
            "subject": i.subject,
            "role": i.role,
            "scope": i.scope,
            "granted_by": i.granted_by,
            "granted_at": i.granted_at,
            "last_used_at": i.last_used_at,
            "decision": i.decision,
            "decided_by": i.decided_by_name,
            "decided_at": i.decided_at,
            "reason": i.reason,
        }
        for i in review.items.all()
    ]
    counts = {d: sum(1 for i in items if i["decision"] == d) for d in ("attested", "revoked", "pending")}
    facts = {
        "id": str(review.public_id),
        "title": review.title,
        "team": review.team.name if review.team_id else None,
        "status": review.status,
        "started_by": review.started_by_name,
        "started_at": review.created_at,
        "closed_by": review.closed_by_name,
        "closed_at": review.closed_at,
        "counts": counts,
    }
    return Content(
        context={"review": facts, "items": items},
        records={"records/access-review.json": as_json(facts), "records/access-review-items.json": as_json(items)},
    )


TRAIL_LISTED = 500  # an extract's PDF lists this many events; its pack holds them all


def trail_content(*, events_qs) -> Content:
    """The events a filter selects (up to the checkpoint), oldest first: the first ``TRAIL_LISTED`` listed."""
    rows = [_event_row(e) for e in events_qs.order_by("seal__seq")[:TRAIL_LISTED]]
    return Content(context={"trail": rows, "listed": len(rows)}, records={})
