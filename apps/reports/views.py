"""Dashboard pages for reports: the Reports page, one report's page, and the buttons that ask for one."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from apps.accounts.principals import principal_for_user
from apps.core.errors import Conflict, ValidationFailed
from apps.core.totals import BoundedPaginator

from . import reviews, schedules, selectors, services
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
        {
            "page": page,
            "reports": page.object_list,
            "can_generate": selectors.can_generate(actor),
            "schedules": schedules.schedule_list(actor=actor),
            "can_schedule": schedules.can_schedule(actor),
        },
    )


@login_required
@require_POST
def schedule_create(request):
    """The Reports page's schedule form."""
    try:
        schedules.schedule_create(
            actor=principal_for_user(request.user),
            kind=request.POST.get("kind", ""),
            cadence=request.POST.get("cadence", ""),
            team_name=request.POST.get("team", "").strip(),
            model_name=request.POST.get("model", "").strip(),
            formats=request.POST.getlist("formats") or None,
        )
    except ValidationFailed as exc:
        messages.error(request, exc.detail)
    return redirect("reports:report_list")


@login_required
@require_POST
def schedule_delete(request, schedule_id):
    schedules.schedule_delete(actor=principal_for_user(request.user), schedule_id=schedule_id)
    return redirect("reports:report_list")


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
def trail_report(request):
    """The audit page's "Export evidence pack": the events its filter selects, as a signed PDF and a pack."""
    params = {
        k: request.POST.get(k, "")
        for k in ("actor", "action", "outcome", "target_type", "target_id", "related", "since", "until")
    }
    try:
        report = services.report_request(
            actor=principal_for_user(request.user), kind=ReportKind.TRAIL, filters=params, formats=["pdf", "pack"]
        )
    except ValidationFailed as exc:
        messages.error(request, exc.detail)
        return redirect("audit:event_list")
    messages.success(request, "The extract is being generated; this page shows its progress.")
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


# --- access reviews


@login_required
@require_safe
def review_list(request):
    actor = principal_for_user(request.user)
    return render(
        request,
        "reports/review_list.html",
        {"reviews": reviews.review_list(actor=actor)[:100], "can_review": reviews.can_review(actor)},
    )


@login_required
@require_POST
def review_start(request):
    try:
        review = reviews.access_review_start(
            actor=principal_for_user(request.user),
            team_name=request.POST.get("team", "").strip(),
            title=request.POST.get("title", "").strip(),
        )
    except ValidationFailed as exc:
        messages.error(request, exc.detail)
        return redirect("reports:review_list")
    return redirect("reports:review_detail", review_id=review.public_id)


@login_required
@require_safe
def review_detail(request, review_id):
    actor = principal_for_user(request.user)
    review = reviews.review_get(actor=actor, review_id=review_id)
    items = list(review.items.all())
    return render(
        request,
        "reports/review_detail.html",
        {
            "review": review,
            "items": items,
            "pending": sum(1 for i in items if i.decision == "pending"),
            "can_review": reviews.can_review(actor) and review.status == "open",
            "me": f"{actor.kind}:{actor.id}",
            "can_report": selectors.can_generate(actor),
        },
    )


@login_required
@require_POST
def review_decide(request, review_id, item_id: int):
    try:
        reviews.access_review_decide(
            actor=principal_for_user(request.user),
            review_id=review_id,
            item_id=item_id,
            decision=request.POST.get("decision", ""),
            reason=request.POST.get("reason", ""),
        )
    except (ValidationFailed, Conflict) as exc:
        messages.error(request, exc.detail)
    return redirect("reports:review_detail", review_id=review_id)


@login_required
@require_POST
def review_close(request, review_id):
    try:
        reviews.access_review_close(actor=principal_for_user(request.user), review_id=review_id)
    except Conflict as exc:
        messages.error(request, exc.detail)
    return redirect("reports:review_detail", review_id=review_id)


@login_required
@require_POST
def review_report(request, review_id):
    """The review page's "Export report": its signed report and evidence pack."""
    report = services.report_request(
        actor=principal_for_user(request.user),
        kind=ReportKind.ACCESS_REVIEW,
        review_id=review_id,
        formats=request.POST.getlist("formats") or None,
    )
    messages.success(request, "The report is being generated; this page shows its progress.")
    return redirect("reports:report_detail", report_id=report.public_id)
