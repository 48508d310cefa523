"""Reads of the audit trail. The trail spans every team, so reading it needs the global ``audit.view``."""

from __future__ import annotations

from django.db.models import F, QuerySet

from apps.core.principals import Principal
from apps.rbac import services as rbac

from .chain import seal_pending
from .filters import EventFilter, apply_filters
from .models import AuditEvent


def event_list(*, actor: Principal, filters: EventFilter) -> QuerySet[AuditEvent]:
    """Events matching the filter, newest first (events not yet sealed, without a seq, on top).

    One query per page whatever its size: an event row holds everything it shows. Events
    committed since the last seal are sealed first (without waiting for a sealer that is
    busy), so a reader sees their sequence numbers without waiting for the seal task.
    """
    rbac.require(actor, "audit.view")
    seal_pending(blocking=False)
    qs = apply_filters(AuditEvent.objects.all(), filters)
    return qs.order_by(F("seq").desc(nulls_first=True), "-id")
