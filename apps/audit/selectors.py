"""Reads of the audit trail. The trail spans every team, so reading it needs the global ``audit.view``."""

from __future__ import annotations

from django.db.models import F, QuerySet

from apps.core.principals import Principal
from apps.rbac import services as rbac

from .filters import EventFilter, apply_filters
from .models import AuditEvent


def event_list(*, actor: Principal, filters: EventFilter) -> QuerySet[AuditEvent]:
    """Events matching the filter, newest first (events not yet sealed, without a seq, on top).

    One query per page whatever its size: an event row holds everything it shows.
    """
    rbac.require(actor, "audit.view")
    qs = apply_filters(AuditEvent.objects.all(), filters)
    return qs.order_by(F("seq").desc(nulls_first=True), "-id")
