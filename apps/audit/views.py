"""Dashboard pages for the audit trail: the filtered table, exports and chain verification.

Thin: the same filter parser, selector and export code as the API, with the
session user as the actor. A user without ``audit.view`` (or ``audit.export``)
gets the 403 page from ``apps.core.middleware.DomainErrorMiddleware``, which
also audits the denial.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_safe

from apps.accounts import selectors as account_selectors
from apps.accounts.principals import principal_for_user
from apps.core.errors import ValidationFailed
from apps.core.principals import PrincipalKind
from apps.core.totals import Total
from apps.rbac import services as rbac

from . import exports, selectors, trail
from .filters import EventFilter, parse_filters, resolve_subject
from .forms import EventFilterForm

PAGE_SIZE = 50


def _filters_from(request, form: EventFilterForm) -> tuple[EventFilter, dict]:
    """The filter the query string asks for, and the per-field errors when it is not valid."""
    try:
        return resolve_subject(parse_filters(request.GET)), {}
    except ValidationFailed as exc:
        for field, messages in exc.errors.items():
            for message in messages:
                form.add_error(field if field in form.fields else None, message)
        return EventFilter(), exc.errors


@login_required
@require_safe
def event_list(request):
    """The audit trail, newest first, 50 a page (paged by sequence number: ``?before=`` / ``?after=``), with
    filters and export buttons."""
    actor = principal_for_user(request.user)
    rbac.require(actor, "audit.view")
    form = EventFilterForm(request.GET or None)
    if form.is_bound:
        form.is_valid()  # shape only; the values are checked by parse_filters below
    filters, errors = _filters_from(request, form)
    if errors:  # show nothing rather than everything when the filter cannot be read
        page = selectors.EventPage(events=[], older=None, newer=None, total=Total(0))
    else:
        page = selectors.event_page(
            actor=actor,
            filters=filters,
            before=request.GET.get("before"),
            after=request.GET.get("after"),
            size=PAGE_SIZE,
        )
    # the people who acted, read in one query, so the table names them "Dana Reyes (dana)"
    people = account_selectors.users_by_id(ids=[e.actor_id for e in page.events if e.actor_type == PrincipalKind.USER])
    for event in page.events:
        event.actor_user = people.get(event.actor_id) if event.actor_type == PrincipalKind.USER else None
    return render(
        request,
        "audit/event_list.html",
        {
            "page": page,
            "paged": page.older is not None or page.newer is not None,
            "form": form,
            "filtered": not filters.is_empty(),
            "has_errors": bool(errors),
            "export_query": urlencode(filters.as_params()),
            "export_params": sorted(filters.as_params().items()),
            "can_export": rbac.has_global(actor, "audit.export"),
        },
    )


@login_required
@require_safe
def event_export(request, fmt: str):
    """Stream the filtered trail as CSV or JSON Lines (the same export the API serves); audited."""
    actor = principal_for_user(request.user)
    filters = parse_filters(request.GET)
    plan = trail.export_start(actor=actor, filters=filters, fmt=fmt)
    return exports.streaming_response(plan.format, plan.filters, up_to_seq=plan.up_to_seq)


@login_required
@require_safe
def chain_verify(request):
    """Verify the whole chain against the signed checkpoints and say what was found, in words."""
    actor = principal_for_user(request.user)
    result = trail.trail_verify(actor=actor)
    return render(request, "audit/verify.html", {"result": result})
