"""Reads of the audit trail. The trail spans every team, so reading it needs the global ``audit.view``."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import F, QuerySet

from apps.core.errors import ValidationFailed
from apps.core.principals import Principal
from apps.core.totals import Total, total_of
from apps.rbac import services as rbac

from .filters import EventFilter, apply_filters, resolve_subject
from .models import AuditEvent


def event_list(*, actor: Principal, filters: EventFilter) -> QuerySet[AuditEvent]:
    """Events matching the filter, newest first (events not yet sealed, without a seq, on top).

    A read: it seals nothing. Events committed since the last seal show as pending (no
    sequence number, no hash) until the seal task, or the writer's own seal on commit
    when that is on, seals them.
    """
    rbac.require(actor, "audit.view")
    return _ordered(resolve_subject(filters))  # a subject's objects are looked up only after the check


def _ordered(filters: EventFilter) -> QuerySet[AuditEvent]:
    qs = apply_filters(AuditEvent.objects.all(), filters)
    return qs.order_by(F("seq").desc(nulls_first=True), "-id")


@dataclass(frozen=True)
class EventPage:
    """One page of the trail, newest first, paged by sequence number (keyset), never by offset.

    ``older`` is the ``before`` value of the next (older) page and ``newer`` the ``after`` value
    of the previous (newer) one; None when there is none. ``total`` is the bounded total of the
    filtered trail (``apps.core.totals``).
    """

    events: list[AuditEvent]
    older: int | None
    newer: int | None
    total: Total


def _cursor(raw: str | None, name: str) -> int | None:
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise ValidationFailed(f"{name}: {raw!r} is not a sequence number.", errors={name: ["Not a sequence number."]})
    return int(raw)


def event_page(
    *, actor: Principal, filters: EventFilter, before: str | None = None, after: str | None = None, size: int = 50
) -> EventPage:
    """A page of ``event_list``: the newest events (no cursor), those older than ``before`` or newer than ``after``.

    Each page reads at most ``size + 1`` rows through the seals' sequence number, so page 1 and
    page 20,000 of a million events cost the same. Events not yet sealed (no sequence number yet,
    found through the sealer's small work list) show as pending on top of the newest page only.
    ``before`` and ``after`` are sequence numbers (a 400 otherwise).
    """
    before_seq, after_seq = _cursor(before, "before"), _cursor(after, "after")
    if before_seq is not None and after_seq is not None:
        raise ValidationFailed("Send either before or after, not both.", errors={"after": ["Not with before."]})
    rbac.require(actor, "audit.view")
    filters = resolve_subject(filters)  # once for the page and its total, after the check
    listed = _ordered(filters)
    qs = listed.filter(seq__isnull=False).order_by("-seq")
    older = newer = None
    if after_seq is not None:
        rows = list(qs.filter(seq__gt=after_seq).order_by("seq")[: size + 1])
        events = rows[:size][::-1]
        if len(rows) > size:
            newer = events[0].seq
        if events and qs.filter(seq__lte=after_seq).exists():
            older = events[-1].seq
    else:
        pending = []
        if before_seq is None:
            pending = list(listed.filter(pending__isnull=False).order_by("-id")[: size + 1])
        else:
            qs = qs.filter(seq__lt=before_seq)
        rows = pending if len(pending) > size else pending + list(qs[: size + 1 - len(pending)])
        events = rows[:size]
        if len(rows) > size and events[-1].seq is not None:
            older = events[-1].seq
        if before_seq is not None and events:
            newer = events[0].seq
    return EventPage(events=events, older=older, newer=newer, total=total_of(_filtered(filters)))


def _filtered(filters: EventFilter) -> QuerySet[AuditEvent]:
    """The filtered trail, unordered: what a page's total counts."""
    return apply_filters(AuditEvent.rows.all(), filters)
