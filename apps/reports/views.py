"""Dashboard pages for reports: the Reports page, one report's page, and the buttons that ask for one."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from apps.accounts.principals import principal_for_user
from apps.core.errors import ValidationFailed
from apps.core.totals import BoundedPaginator

from . import selectors, services
from .choices import ReportFormat, ReportKind


def _see_other(url: str) -> HttpResponseRedirect:
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response


@login_required
@require_safe
def report_list(request):
    """Reports in the reader's scope, newest first, with their progress and files."""
    actor = principal_for_user(request.user)
    page = BoundedPaginator(selectors.report_list(actor=actor), 50).get_page(request.GET.get("page"))
    return render(
        request,
        "reports/report_list.html",
        {"page": page, "reports": page.object_list, "can_generate": selectors.can_generate(actor)},
    )


@login_required
@require_safe
def report_detail(request, report_id):
    report = selectors.report_get(actor=principal_for_user(request.user), report_id=report_id)
    return render(request, "reports/report_detail.html", {"report": report, "formats": ReportFormat})


@login_required
@require_POST
def release_report(request, release_id):
    """The release page's "Export report" and "Export evidence pack" buttons."""
    formats = request.POST.getlist("formats") or None
    try:
        report = services.report_request(
            actor=principal_for_user(request.user), kind=ReportKind.RELEASE, release_id=release_id, formats=formats
        )
    except ValidationFailed as exc:
        messages.error(request, exc.detail)
        return redirect("releases:release_detail", release_id=release_id)
    messages.success(request, "The report is being generated; this page shows its progress.")
    return redirect("reports:report_detail", report_id=report.public_id)


@login_required
@require_POST
def model_report(request, name: str):
    """The model page's "Export report" button: the model's report over its whole life, with its evidence pack."""
    try:
        report = services.report_request(
            actor=principal_for_user(request.user),
            kind=ReportKind.MODEL,
            model_name=name,
            formats=request.POST.getlist("formats") or None,
        )
    except ValidationFailed as exc:
        messages.error(request, exc.detail)
        return redirect("registry:model_detail", name=name)
    messages.success(request, "The report is being generated; this page shows its progress.")
    return redirect("reports:report_detail", report_id=report.public_id)


@login_required
@require_POST
def period_report(request):
    """The Reports page's form: a period report for one team or every team."""
    try:
        report = services.report_request(
            actor=principal_for_user(request.user),
            kind=ReportKind.PERIOD,
            team_name=request.POST.get("team", "").strip(),
            since=request.POST.get("since", ""),
            until=request.POST.get("until", ""),
            formats=request.POST.getlist("formats") or None,
        )
    except ValidationFailed as exc:
        messages.error(request, exc.detail)
        return redirect("reports:report_list")
    messages.success(request, "The report is being generated; this page shows its progress.")
    return redirect("reports:report_detail", report_id=report.public_id)


@login_required
@require_POST
def report_download(request, report_id, fmt: str):
    """Download a report's file: audited, then on to the signed link (the file)."""
    try:
        link = services.report_download_start(actor=principal_for_user(request.user), report_id=report_id, fmt=fmt)
    except services.ReportNotReady as exc:
        messages.error(request, exc.detail)
        return redirect("reports:report_detail", report_id=report_id)
    return _see_other(link.url)
