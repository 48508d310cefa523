"""Filters over the audit trail, shared by the API, the dashboard and the exports.

One parser turns query parameters into an ``EventFilter``; bad values are a
``ValidationFailed`` naming the parameter (400 in the API, a form error on the
page). The same filter object drives the list, the CSV and the JSON Lines export.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.db.models import QuerySet
from django.utils.dateparse import parse_date, parse_datetime

from apps.core.errors import ValidationFailed
from apps.core.principals import PrincipalKind

from . import related as relation
from .choices import Outcome

ACTOR_KINDS = (PrincipalKind.USER, PrincipalKind.SERVICE_ACCOUNT, PrincipalKind.SYSTEM, PrincipalKind.ANONYMOUS)
PARAMETERS = ("actor", "action", "outcome", "target", "target_type", "target_id", "related", "since", "until")


@dataclass(frozen=True)
class EventFilter:
    """What to select from the trail; empty fields select everything."""

    actor: str = ""  # a name, or "type:id" (user:7, service_account:3, system:, anonymous:)
    action: str = ""  # exact, or a prefix ending in "*" (model.*)
    outcome: str = ""
    target_type: str = ""
    target_id: str = ""
    related: str = ""  # a subject, kind:key (apps.audit.related): model:credit-scoring, release:<id>, person:alice
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive; a bare date means the end of that day
    subject: relation.Subject | None = field(default=None, compare=False)  # ``related`` resolved to its objects

    def as_params(self) -> dict[str, str]:
        """The filter as query parameters (only those set), for links and the audit record of an export."""
        out = {}
        for f in fields(self):
            key, value = f.name, getattr(self, f.name)
            if key == "subject" or value in ("", None):
                continue
            out[key] = value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else str(value)
        return out

    def is_empty(self) -> bool:
        return not self.as_params()


def _parse_time(name: str, value: str, *, end_of_day: bool) -> datetime | None:
    value = value.strip()
    if not value:
        return None
    try:
        day = parse_date(value)  # a bare date (fromisoformat would also read it as a midnight datetime)
        parsed = None if day is not None else parse_datetime(value)
    except ValueError:
        day = parsed = None
    if day is None and parsed is None:
        raise ValidationFailed(
            f"{name}: {value!r} is not an ISO 8601 date or time (e.g. 2026-01-31 or 2026-01-31T09:00:00Z).",
            errors={name: ["Enter an ISO 8601 date or time."]},
        )
    if day is not None:
        parsed = datetime.combine(day, time.min)
        if end_of_day:
            parsed += timedelta(days=1)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_filters(params: Any) -> EventFilter:
    """Build a filter from query parameters (a QueryDict or a dict); raise ValidationFailed on bad values.

    ``target`` is a shorthand for ``target_type`` and ``target_id``: ``model`` or ``model:42``. ``related`` names
    a subject (``model:credit-scoring``); only its form is checked here: ``resolve_subject`` (after the caller's
    permission check) finds its objects, and an unknown subject is a 400 naming it.
    """

    def get(name: str) -> str:
        value = params.get(name, "")
        return (value or "").strip()

    outcome = get("outcome")
    if outcome and outcome not in Outcome.values:
        raise ValidationFailed(
            f"outcome: choose one of {', '.join(Outcome.values)}.", errors={"outcome": ["Not a valid outcome."]}
        )
    target_type, target_id = get("target_type"), get("target_id")
    target = get("target")
    if target:
        kind, _, ident = target.partition(":")
        target_type, target_id = target_type or kind.strip(), target_id or ident.strip()
    action = get("action")
    if "*" in action[:-1]:
        raise ValidationFailed(
            "action: '*' is allowed only at the end (e.g. model.*).", errors={"action": ["'*' only at the end."]}
        )
    since = _parse_time("since", get("since"), end_of_day=False)
    until = _parse_time("until", get("until"), end_of_day=True)
    if since and until and since >= until:
        raise ValidationFailed("since must be before until.", errors={"until": ["Must be after since."]})
    return EventFilter(
        related=relation.parse(get("related")) if get("related") else "",
        actor=get("actor"),
        action=action,
        outcome=outcome,
        target_type=target_type,
        target_id=target_id,
        since=since,
        until=until,
    )


def resolve_subject(f: EventFilter) -> EventFilter:
    """``f`` with its ``related`` subject resolved to the subject's objects (``apps.audit.related``); a
    ``ValidationFailed`` when no such subject is known. Call it after the permission check."""
    if not f.related or f.subject is not None:
        return f
    return replace(f, subject=relation.resolve(f.related))


def apply_filters(queryset: QuerySet, f: EventFilter) -> QuerySet:
    """Narrow an AuditEvent queryset to the filter; every condition uses an indexed column where one exists."""
    f = resolve_subject(f)
    if f.actor:
        kind, sep, ident = f.actor.partition(":")
        if sep and kind in ACTOR_KINDS:
            queryset = queryset.filter(actor_type=kind)
            if ident:
                queryset = queryset.filter(actor_id=ident)
        else:
            queryset = queryset.filter(actor_name=f.actor)
    if f.action:
        if f.action.endswith("*"):
            queryset = queryset.filter(action__startswith=f.action[:-1])
        else:
            queryset = queryset.filter(action=f.action)
    if f.outcome:
        queryset = queryset.filter(outcome=f.outcome)
    if f.target_type:
        queryset = queryset.filter(target_type=f.target_type)
    if f.target_id:
        queryset = queryset.filter(target_id=f.target_id)
    if f.subject is not None:
        queryset = queryset.filter(relation.condition(f.subject))
    if f.since:
        queryset = queryset.filter(occurred_at__gte=f.since)
    if f.until:
        queryset = queryset.filter(occurred_at__lt=f.until)
    return queryset
