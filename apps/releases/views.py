"""Dashboard pages for releases: the approval queue, the release list and page, and the forms that
request, approve, reject, cancel and close a review.

Thin: each form posts to one service (four eyes and every other rule live there) and reads go
through the selectors (rbac in both), so what is out of scope is a 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe

from apps.accounts.principals import principal_for_user
from apps.core.errors import Conflict, ValidationFailed
from apps.core.templatetags.words import environment_text
from apps.core.totals import BoundedPaginator
from apps.deployments import selectors as deployments
from apps.policies.disclosure import decision_for_reader
from apps.rbac import services as rbac
from apps.registry import selectors as registry_selectors

from . import selectors, services
from .choices import LIVE, OPEN, ReleaseStatus, ReviewStatus


def _refused(request, exc) -> None:
    messages.error(request, exc.detail)


@login_required
@require_safe
def approval_queue(request):
    """What waits for me: requests I may approve and have not (never my own), open post-release reviews,
    and changes of models' policy facts I may decide on (never my own)."""
    actor = principal_for_user(request.user)
    items = selectors.approval_queue(actor=actor)
    now = timezone.now()
    for item in items:
        item.waited = now - item.waiting_since
    facts_changes = registry_selectors.facts_change_queue(actor=actor)
    return render(request, "releases/approval_queue.html", {"items": items, "facts_changes": facts_changes})


@login_required
@require_safe
def release_list(request):
    """Release requests I may see, newest first, filtered by status and environment."""
    actor = principal_for_user(request.user)
    status, environment = request.GET.get("status", ""), request.GET.get("environment", "")
    releases = selectors.release_list(actor=actor, status=status, environment=environment)
    page = BoundedPaginator(releases, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "releases/release_list.html",
        {
            "page": page,
            "releases": page.object_list,
            "statuses": ReleaseStatus.choices,
            "environments": selectors.environment_list(),
            "status": status,
            "environment": environment,
        },
    )


@login_required
@require_safe
def release_detail(request, release_id):
    """A release: its decision rule by rule, the evidence it rests on, approvals so far and the forms."""
    actor = principal_for_user(request.user)
    release = selectors.release_get(actor=actor, release_id=release_id)  # a pure read: nothing is re-judged here
    decision = decision_for_reader(actor=actor, decision=release.decision)
    me = actor.person_key
    mine = me == ("user", release.requested_by_id) or me == ("user", release.version.created_by_id)
    decided = any(not a.void and me == ("user", a.approver_id) for a in release.approvals.all())
    review = getattr(release, "review", None) if release.emergency else None
    approvals = selectors.approvals_summary(release, decision)
    # the page names each approver by full name: the summary (shared with the API) carries the username
    approvals["received"] = [
        {**row, "approver": a.approver} for row, a in zip(approvals["received"], release.approvals.all(), strict=True)
    ]
    # Past its time but not yet closed by the periodic task: shown as such, never written here.
    expired_due = release.status in OPEN and release.expires_at is not None and release.expires_at <= timezone.now()
    return render(
        request,
        "releases/release_detail.html",
        {
            "release": release,
            "version": release.version,
            "decision": decision,
            "rules": selectors.release_rules(decision, approvals),
            "evidence": decision.get("evidence", []),
            "approvals": approvals,
            "blocking": services.blocking(decision),
            "expired_due": expired_due,
            "can_decide": release.status in OPEN
            and not expired_due
            and not mine
            and not decided
            and rbac.can_approve(actor, release),
            "waits_for_evidence": release.status == ReleaseStatus.PENDING_EVIDENCE,
            "can_cancel": release.status in LIVE
            and (
                me == ("user", release.requested_by_id)
                and rbac.allows(actor, "releases.request", release)
                or rbac.allows(actor, "releases.deploy", release)
            ),
            "review": review,
            "can_deploy": deployments.can_deploy(actor=actor, release=release),
            "can_report": rbac.allows(actor, "reports.release", release),
            "can_close_review": review is not None
            and review.status == ReviewStatus.OPEN
            and me != ("user", release.requested_by_id)
            and rbac.allows(actor, "releases.review", release),
        },
    )


@login_required
@require_POST
def release_request(request, name: str, number: int):
    """The version page's "Request release" form."""
    actor = principal_for_user(request.user)
    try:
        release = services.release_request_create(
            actor=actor,
            model_name=name,
            number=number,
            environment=request.POST.get("environment", ""),
            justification=request.POST.get("justification", ""),
            change_reference=request.POST.get("change_reference", ""),
            emergency=request.POST.get("emergency") == "1",
        )
    except (ValidationFailed, Conflict) as exc:
        _refused(request, exc)
        return redirect("registry:version_detail", name=name, number=number)
    messages.success(request, f"Release to {environment_text(release.environment)} requested.")
    return redirect("releases:release_detail", release_id=release.public_id)


@login_required
@require_POST
def release_decide(request, release_id):
    """Approve or reject (with a reason) from the release page."""
    try:
        approval = services.approval_decide(
            actor=principal_for_user(request.user),
            release_id=release_id,
            decision=request.POST.get("decision", ""),
            comment=request.POST.get("comment", ""),
            binding_digest=request.POST.get("binding_digest", ""),
        )
    except (ValidationFailed, Conflict) as exc:
        _refused(request, exc)
    else:
        messages.success(request, "Your approval is recorded." if approval.decision == "approve" else "Rejected.")
    return redirect("releases:release_detail", release_id=release_id)


@login_required
@require_POST
def release_cancel(request, release_id):
    try:
        services.release_cancel(
            actor=principal_for_user(request.user), release_id=release_id, reason=request.POST.get("reason", "")
        )
    except (ValidationFailed, Conflict) as exc:
        _refused(request, exc)
    else:
        messages.success(request, "The release request was cancelled.")
    return redirect("releases:release_detail", release_id=release_id)


@login_required
@require_POST
def review_close(request, release_id):
    try:
        services.post_release_review_close(
            actor=principal_for_user(request.user), release_id=release_id, findings=request.POST.get("findings", "")
        )
    except (ValidationFailed, Conflict) as exc:
        _refused(request, exc)
    else:
        messages.success(request, "The post-release review is closed.")
    return redirect("releases:release_detail", release_id=release_id)
