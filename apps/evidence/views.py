"""Dashboard pages for evidence: ask for a report on a version or a dataset, follow it, read it.

Thin, like the registry's pages: the request goes through ``services.evidence_request`` and
the run is read through ``selectors.evidence_run_get`` (rbac in both), so a person sees only
runs in their scope and anything else is a 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from apps.accounts.principals import principal_for_user
from apps.core.errors import Conflict, ValidationFailed
from apps.jobs import selectors as job_selectors
from apps.rbac import services as rbac

from . import charts, selectors, services
from . import verdicts as verdicts_of
from .choices import EvidenceKind, RunStatus
from .runs import run_progress

# The per-group metrics a bias report shows, in this order, with their column headings.
GROUP_METRICS = (
    ("selection_rate", "Selection rate"),
    ("accuracy", "Accuracy"),
    ("precision", "Precision"),
    ("recall", "Recall (TPR)"),
    ("false_positive_rate", "FPR"),
    ("false_negative_rate", "FNR"),
)
DISPARITIES = (
    ("demographic_parity_difference", "Demographic parity difference"),
    ("demographic_parity_ratio", "Demographic parity ratio"),
    ("equalized_odds_difference", "Equalized odds difference"),
    ("equalized_odds_ratio", "Equalized odds ratio"),
)


def _kind(kind: str) -> str:
    if kind not in EvidenceKind.values:
        raise Http404("No such kind of evidence.")
    return kind


def _form_parameters(request, kind: str) -> dict:
    """The few parameters the pages offer: a PII scan may also write a scrubbed copy."""
    if kind == EvidenceKind.PII_SCAN and request.POST.get("scrub") == "1":
        return {"scrub": True}
    return {}


def _requested(request, requested: services.EvidenceRequested):
    if requested.reused:
        messages.info(request, "This report was already asked for with the same inputs; here it is.")
    return redirect("evidence:run_detail", run_id=requested.run.public_id)


@login_required
@require_POST
def version_evidence_request(request, name: str, number: int, kind: str):
    """Ask for a report of ``kind`` on a version (its evaluation dataset's declared columns); then show the run."""
    kind = _kind(kind)
    try:
        requested = services.evidence_request(
            actor=principal_for_user(request.user),
            kind=kind,
            version=(name, number),
            parameters=_form_parameters(request, kind),
        )
    except (ValidationFailed, Conflict) as exc:
        messages.error(request, exc.detail)
        return redirect("registry:version_detail", name=name, number=number)
    return _requested(request, requested)


@login_required
@require_POST
def dataset_evidence_request(request, dataset_id: int, kind: str):
    """Ask for a report of ``kind`` (a PII scan, a bias report) on a dataset; then show the run."""
    kind = _kind(kind)
    try:
        requested = services.evidence_request(
            actor=principal_for_user(request.user),
            kind=kind,
            dataset_id=dataset_id,
            parameters=_form_parameters(request, kind),
        )
    except (ValidationFailed, Conflict) as exc:
        messages.error(request, exc.detail)
        return redirect("registry:dataset_detail", dataset_id=dataset_id)
    return _requested(request, requested)


@login_required
@require_POST
def run_cancel(request, run_id):
    """Cancel a queued or running run; back to its page with the outcome."""
    try:
        services.evidence_run_cancel(actor=principal_for_user(request.user), run_id=run_id)
    except Conflict as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, "The run was cancelled.")
    return redirect("evidence:run_detail", run_id=run_id)


@login_required
@require_POST
def finding_review(request, run_id):
    """Mark a PII finding as a false positive (or confirm it), with the mandatory reason."""
    try:
        review = services.evidence_finding_review(
            actor=principal_for_user(request.user),
            run_id=run_id,
            finding=request.POST.get("finding", ""),
            verdict=request.POST.get("verdict", ""),
            reason=request.POST.get("reason", ""),
        )
    except (ValidationFailed, Conflict) as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, f"{review.finding} marked {review.get_verdict_display().lower()}.")
    return redirect(f"{_run_url(run_id)}#findings")


def _run_url(run_id) -> str:
    from django.urls import reverse

    return reverse("evidence:run_detail", kwargs={"run_id": run_id})


@login_required
@require_safe
def file_download(request, run_id, name: str):
    """Download a run's result file (audited)."""
    file, stream = services.evidence_file_download(actor=principal_for_user(request.user), run_id=run_id, name=name)
    return FileResponse(stream, as_attachment=True, filename=file.name, content_type=file.content_type)


def _report_rows(report: dict) -> dict:
    """One sensitive column's (or the intersection's) report, shaped for the template."""
    disparities = report.get("disparities", {})
    dp = disparities.get("demographic_parity_difference") or {}
    highest = {str(label) for label in (dp.get("max") or {}).get("groups", [])}
    lowest = {str(label) for label in (dp.get("min") or {}).get("groups", [])}
    groups = []
    for group in report.get("groups", []):
        label = str(group.get("label"))
        groups.append(
            {
                "name": group.get("name", label),
                "count": group.get("count"),
                "metrics": [group.get(key) for key, _ in GROUP_METRICS],
                "bar": round(100 * (group.get("selection_rate") or 0), 1),
                "extreme": "max" if label in highest else "min" if label in lowest else "",
            }
        )
    names = {str(g.get("label")): g.get("name", str(g.get("label"))) for g in report.get("groups", [])}
    rows = []
    for key, title in DISPARITIES:
        item = disparities.get(key)
        if not item:
            continue
        rows.append(
            {
                "title": title,
                "value": item.get("value"),
                "metric": item.get("metric", ""),
                "max": ", ".join(names.get(str(x), str(x)) for x in (item.get("max") or {}).get("groups", [])),
                "min": ", ".join(names.get(str(x), str(x)) for x in (item.get("min") or {}).get("groups", [])),
            }
        )
    return {"title": " × ".join(report.get("columns", [])), "groups": groups, "disparities": rows}


def _bias_context(run, summary: dict) -> dict:
    reports = [_report_rows(r) for r in summary.get("by_column", {}).values()]
    if summary.get("intersection"):
        reports.append(_report_rows(summary["intersection"]))
    for report in reports:
        report["chart"] = charts.group_bars(
            [{"name": g["name"], "rate": g["bar"] / 100, "extreme": g["extreme"]} for g in report["groups"]]
        )
    verdicts = verdicts_of.bias_verdicts(summary, run.version.model if run.version_id else None)
    return {
        "reports": reports,
        "metric_titles": [title for _, title in GROUP_METRICS],
        "overall": summary.get("overall") or {},
        "verdicts": verdicts,
        "verdicts_failed": sum(1 for v in verdicts if v["result"] == "fail"),
    }


def _pii_context(run, actor) -> dict:
    summary = run.summary or {}
    latest = selectors.finding_reviews(run)
    columns = []
    for column in summary.get("columns", []):
        entities = []
        for entity in column.get("entities", []):
            finding = f"{column.get('name')}:{entity.get('entity_type')}"
            review = latest.get(finding)
            entities.append(
                {
                    **entity,
                    "finding": finding,
                    "share_pct": round(100 * (entity.get("share_of_rows") or 0), 1),
                    "review": review,
                }
            )
        columns.append({**column, "entities": entities})
    state = selectors.review_state(run) or {}
    return {
        "pii_columns": columns,
        "pii_totals": sorted((summary.get("totals") or {}).items()),
        "review_state": state,
        "can_review": rbac.allows(actor, "evidence.review", run),
        "scrubbed": summary.get("scrubbed_dataset"),
    }


def _additivity_text(additivity: dict) -> str:
    """'largest error 2.3e-16 (tolerance 1e-09)': the check in numbers a reader can compare."""
    error, tolerance = additivity.get("max_abs_error"), additivity.get("tolerance")
    if not isinstance(error, int | float) or not isinstance(tolerance, int | float):
        return ""
    return f"largest error {error:.2g} (tolerance {tolerance:.2g})"


def _explain_context(summary: dict) -> dict:
    local = []
    for item in summary.get("local", []):
        local.append({**item, "chart": charts.waterfall(item)})
    return {
        "importance": charts.importance_bars(summary.get("global", [])),
        "beeswarm": charts.beeswarm(summary.get("beeswarm") or {}),
        "local_explanations": local,
        "additivity": summary.get("additivity") or {},
        "additivity_text": _additivity_text(summary.get("additivity") or {}),
        "budget": summary.get("budget") or {},
    }


@login_required
@require_safe
def run_detail(request, run_id):
    """A run: its progress while it works (the page refreshes itself), then the report or why it failed."""
    actor = principal_for_user(request.user)
    run = selectors.evidence_run_get(actor=actor, run_id=run_id)
    summary = run.summary or {}
    working = run.status in (RunStatus.QUEUED, RunStatus.RUNNING)
    progress, progress_message = run_progress(run)
    context = {
        "run": run,
        "working": working,
        # a queued run with no worker alive to take it says so, rather than "Queued" for ever
        "waiting_for_worker": run.status == RunStatus.QUEUED and not job_selectors.workers_alive_count(),
        "progress": progress,
        "progress_message": progress_message,
        "chunks": list(run.chunks.all()),
        "files": list(run.files.all()),
        "can_cancel": working and rbac.allows(actor, "evidence.request", run),
        "reports": [],
    }
    if run.status == RunStatus.SUCCEEDED:
        if run.kind == EvidenceKind.BIAS:
            context.update(_bias_context(run, summary))
        elif run.kind == EvidenceKind.PII_SCAN:
            context.update(_pii_context(run, actor))
        elif run.kind == EvidenceKind.EXPLAINABILITY:
            context.update(_explain_context(summary))
    return render(request, "evidence/run_detail.html", context)
