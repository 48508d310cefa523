"""Dashboard pages for evidence: ask for a version's bias report, and read a run's report.

Thin, like the registry's pages: the request goes through ``services.evidence_request`` and
the run is read through ``selectors.evidence_run_get`` (rbac in both), so a person sees only
runs in their scope and anything else is a 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from apps.accounts.principals import principal_for_user
from apps.core.errors import Conflict, ValidationFailed

from . import selectors, services
from .choices import RunStatus

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


@login_required
@require_POST
def version_bias_request(request, name: str, number: int):
    """Ask for the bias report of a version (its evaluation dataset's declared columns); then show the run."""
    try:
        requested = services.evidence_request(
            actor=principal_for_user(request.user), kind="bias", version=(name, number), parameters={}
        )
    except (ValidationFailed, Conflict) as exc:
        messages.error(request, exc.detail)
        return redirect("registry:version_detail", name=name, number=number)
    if requested.reused:
        messages.info(request, "This report was already asked for with the same inputs; here it is.")
    return redirect("evidence:run_detail", run_id=requested.run.public_id)


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


@login_required
@require_safe
def run_detail(request, run_id):
    """A run: its progress while it works (the page refreshes itself), then the report or why it failed."""
    run = selectors.evidence_run_get(actor=principal_for_user(request.user), run_id=run_id)
    summary = run.summary or {}
    reports = []
    if run.status == RunStatus.SUCCEEDED and run.kind == "bias":
        reports = [_report_rows(r) for r in summary.get("by_column", {}).values()]
        if summary.get("intersection"):
            reports.append(_report_rows(summary["intersection"]))
    return render(
        request,
        "evidence/run_detail.html",
        {
            "run": run,
            "working": run.status in (RunStatus.QUEUED, RunStatus.RUNNING),
            "reports": reports,
            "metric_titles": [title for _, title in GROUP_METRICS],
            "overall": summary.get("overall") or {},
        },
    )
