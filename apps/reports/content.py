"""What a release report says: gathered once, rendered as the page/PDF and written as the pack's records.

``release_content`` reads the release as its reader may see it (the person who asked for the
report; datasets outside their scope are named as hidden, as on the release page) and returns
the template's context and the pack's record files (JSON), built from the same values so the
PDF and the pack cannot disagree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from apps.core.principals import Principal
from apps.deployments.models import Deployment
from apps.evidence import verdicts
from apps.evidence.models import EvidenceRun
from apps.policies.disclosure import decision_for_reader
from apps.policies.models import PolicyPackVersion
from apps.releases import selectors as releases
from apps.releases.models import ReleaseRequest

from . import regulations


@dataclass
class Content:
    context: dict
    records: dict[str, bytes] = field(default_factory=dict)


def as_json(value) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n").encode()


def person_name(user, account=None) -> str:
    if account is not None:
        return f"service account {account.name}"
    if user is None:
        return ""
    full = user.get_full_name() if hasattr(user, "get_full_name") else ""
    return f"{full} ({user.username})" if full else user.username


CHART_WIDTH, CHART_LABEL, CHART_ROW = 640, 230, 20


def verdict_bars(verdicts: list[dict]) -> dict | None:
    """SVG geometry for a bias report's verdicts: one bar per group and metric, and its threshold as a tick.

    The scale runs to 1.5 times the largest threshold or the largest value, whichever is larger, so a
    breach shows past its tick. None when nothing was measured.
    """
    rows = [v for v in verdicts if isinstance(v.get("measured"), int | float)]
    if not rows:
        return None
    top = max(max(v["measured"] for v in rows), 1.5 * max(v["threshold"] for v in rows)) or 1.0
    span = CHART_WIDTH - CHART_LABEL - 60
    bars = []
    for k, v in enumerate(rows):
        width = max(1.0, round(span * v["measured"] / top, 1))
        bars.append(
            {
                "y": k * CHART_ROW,
                "label": f"{v['attribute']}: {v['metric'].replace('_', ' ')}",
                "width": width,
                "tick": round(CHART_LABEL + span * v["threshold"] / top, 1),
                "text_x": CHART_LABEL + width + 6,
                "value": f"{v['measured']:.3f}",
                "fail": v["result"] != "pass",
            }
        )
    return {"bars": bars, "height": len(bars) * CHART_ROW + 4, "width": CHART_WIDTH, "label_width": CHART_LABEL}


def release_content(*, reader: Principal, release: ReleaseRequest) -> Content:
    """The release report's context and records, as ``reader`` may see them."""
    version = release.version
    decision = decision_for_reader(actor=reader, decision=release.decision) or {}
    approvals = releases.approvals_summary(release, decision)
    rules = releases.release_rules(decision, approvals)
    approval_rows = [
        {
            "approver": person_name(a.approver, a.approver_service_account),
            "decision": a.decision,
            "roles": a.roles,
            "comment": a.comment,
            "at": a.created_at,
            "binding_digest": a.binding_digest,
            "bound_to_current": a.binding_digest == release.binding_digest,
            "void": a.void,
            "void_reason": a.void_reason,
        }
        for a in release.approvals.all()
    ]

    runs = {
        str(r.public_id): r
        for r in EvidenceRun.objects.filter(public_id__in=[e.get("run") for e in decision.get("evidence", [])])
    }
    evidence = []
    for entry in decision.get("evidence", []):
        run = runs.get(str(entry.get("run")))
        item = {**entry, "status": run.status if run else "missing", "verdicts": [], "engine_versions": {}}
        if run is not None:
            item["engine_versions"] = run.engine_versions
            item["finished_at"] = run.finished_at
            if run.kind == "bias" and run.summary:
                item["verdicts"] = verdicts.bias_verdicts(run.summary, release.model)
                item["chart"] = verdict_bars(item["verdicts"])
            outcome = verdicts.run_outcome(run)
            item["outcome"] = outcome.text if outcome else ""
            item["summary"] = run.summary
        evidence.append(item)

    packs = []
    for p in decision.get("packs", []):
        source = (
            PolicyPackVersion.objects.filter(pack__name=p.get("name"), number=p.get("version"))
            .values_list("source", flat=True)
            .first()
        )
        packs.append({**p, "source": source})

    review = getattr(release, "review", None) if release.emergency else None
    deployments = list(Deployment.objects.filter(release=release).select_related("target").order_by("created_at", "id"))
    deployment_rows = [
        {
            "id": str(d.public_id),
            "target": d.target.name,
            "service": d.service,
            "strategy": d.strategy,
            "kind": d.kind,
            "state": d.state,
            "created_at": d.created_at,
            "traffic": d.traffic,
        }
        for d in deployments
    ]
    facts = {
        "model": release.model.name,
        "risk_tier": release.model.risk_tier,
        "team": release.owner_team.name,
        "version": version.number,
        "format": version.format,
        "artifact_sha256": version.sha256,
        "artifact_size": version.size,
        "status": version.status,
        "source_repository": version.source_repository,
        "source_commit": version.source_commit,
        "ci_run_url": version.ci_run_url,
        "training_datasets": [
            {"name": d.name, "sha256": d.sha256} for d in version.training_datasets.all().order_by("name")
        ],
        "evaluation_dataset": (
            {"name": version.evaluation_dataset.name, "sha256": version.evaluation_dataset.sha256}
            if version.evaluation_dataset_id
            else None
        ),
        "model_card": version.model_card,
        "metrics": version.metrics,
    }
    release_row = {
        "id": str(release.public_id),
        "environment": release.environment.name,
        "status": release.status,
        "emergency": release.emergency,
        "justification": release.justification,
        "change_reference": release.change_reference,
        "requested_by": person_name(release.requested_by, release.requested_by_service_account),
        "requested_at": release.created_at,
        "evaluated_at": release.evaluated_at,
        "approved_at": release.approved_at,
        "closed_at": release.closed_at,
        "closed_reason": release.closed_reason,
        "binding_digest": release.binding_digest,
        "decision_allow": decision.get("allow"),
        "facts_sha256": decision.get("facts_sha256", ""),
    }
    review_row = (
        {
            "status": review.status,
            "opened_at": review.created_at,
            "closed_at": review.closed_at,
            "closed_by": person_name(review.closed_by),
            "findings": review.findings,
        }
        if review is not None
        else None
    )
    matrix = regulations.clause_matrix(rules=rules, evidence=evidence, release=release_row)
    context = {
        "matrix": matrix,
        "release": release_row,
        "version": facts,
        "rules": rules,
        "packs": packs,
        "evidence": evidence,
        "approvals": approval_rows,
        "approvals_summary": approvals,
        "review": review_row,
        "deployments": deployment_rows,
    }
    records = {
        "records/release.json": as_json(release_row),
        "records/version.json": as_json(facts),
        "records/policy/decision.json": as_json(release.decision if isinstance(release.decision, dict) else {}),
        "records/approvals.json": as_json(approval_rows),
        "records/policy/clause-matrix.json": as_json(matrix),
        "records/deployments.json": as_json(deployment_rows),
    }
    if review_row is not None:
        records["records/post-release-review.json"] = as_json(review_row)
    for item in evidence:
        records[f"records/evidence/{item.get('kind', 'run')}-{item.get('run')}.json"] = as_json(item)
    for p in packs:
        if p.get("source") is not None:
            records[f"records/policy/packs/{p['name']}-v{p.get('version')}.rego"] = p["source"].encode()
    return Content(context=context, records=records)
