"""The one writer of audit events.

``record`` is called by every service inside the service's transaction, so
the event commits or rolls back with the change it describes. Denials are
recorded by the error handlers (``apps.core.errors``, the dashboard
middleware) through ``record_denial`` in a transaction of their own.
"""

from __future__ import annotations

import json
import logging
import math
import re
import uuid
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from apps.core.fastpath import Row, defer_insert, insert_row
from apps.core.principals import Principal

from . import context
from .chain import seal_after_commit
from .choices import Outcome
from .models import AuditEvent

logger = logging.getLogger(__name__)

_SECRET_KEY_RE = re.compile(r"(secret|token|password|passwd|key_hash|salt|private|credential|authorization)", re.I)
REDACTED = "[redacted]"


def _text(value: str) -> str:
    """Text as every database can store it: NUL (which PostgreSQL refuses) becomes U+FFFD."""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def redact(value: Any) -> Any:
    """Replace the values of secret-looking keys, recursively; JSON-normalise the rest.

    Values JSON cannot hold portably become text: non-finite numbers (``"nan"``, ``"inf"``)
    and anything that is not a JSON type (``str(value)``).
    """
    if isinstance(value, dict):
        return {_text(str(k)): (REDACTED if _SECRET_KEY_RE.search(str(k)) else redact(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return _text(str(value))


def _normalise(value: Any) -> Any:
    """A before/after value as it will be stored: redacted, JSON types only."""
    if value is None:
        return None
    # Round-trip through JSON so the stored value is exactly what the sealer will hash.
    return json.loads(json.dumps(redact(value), default=str))


def describe(obj: Any) -> tuple[str, str, str]:
    """(type, id, name) of an audited object: models expose ``audit_ref()``."""
    if obj is None:
        return ("", "", "")
    if isinstance(obj, tuple):
        t, i, n = (list(obj) + ["", "", ""])[:3]
        return (str(t), str(i), str(n))
    ref = getattr(obj, "audit_ref", None)
    if callable(ref):
        return ref()
    return (obj._meta.label_lower.split(".")[-1], str(obj.pk), str(obj)[:255])


def record(
    *,
    action: str,
    target: Any = None,
    outcome: str = Outcome.SUCCESS,
    actor: Principal | None = None,
    before: Any = None,
    after: Any = None,
    reason: str = "",
    related: Any = None,
    artifact_sha256: str = "",
) -> AuditEvent:
    """Append one event to the trail in the caller's transaction; it is sealed after commit."""
    ctx = context.current()
    actor = actor or ctx.principal or Principal.system()
    target_type, target_id, target_name = describe(target)
    related_type, related_id, _ = describe(related)
    values = {
        "id": None,
        "event_id": uuid.uuid4(),
        "seq": None,  # the sealer's, with prev_hash, hash and sealed_at
        "occurred_at": timezone.now(),
        "actor_type": actor.kind,
        "actor_id": "" if actor.id is None else str(actor.id),
        "actor_name": _text(actor.name[:255]),
        "token_id": _text(actor.token_id or ""),
        "source": ctx.source,
        "client_ip": _text(ctx.client_ip or ""),
        "request_id": ctx.request_id,
        "action": _text(action),
        "outcome": outcome,
        "target_type": _text(target_type),
        "target_id": _text(target_id),
        "target_name": _text(target_name[:255]),
        "related_type": _text(related_type),
        "related_id": _text(related_id),
        "before": _normalise(before),
        "after": _normalise(after),
        "reason": _text(reason),
        "artifact_sha256": artifact_sha256 or "",
        "prev_hash": "",
        "hash": "",
        "sealed_at": None,
    }
    # Every field by position: the model's cheap path (no defaults looked up). A field added to
    # AuditEvent and not given here is a KeyError on the first event, not a silently empty column.
    event = AuditEvent(*[values[name] for name in _FIELD_NAMES])
    _insert(event, values)
    if settings.ASSAY_AUDIT_SEAL_ON_COMMIT:
        seal_after_commit()
    return event


_FIELD_NAMES = tuple(f.attname for f in AuditEvent._meta.concrete_fields)
# Every column but the id and the sealer's NULLs (seq, sealed_at); prev_hash and hash go in empty.
_INSERT_COLUMNS = tuple(
    f.column for f in AuditEvent._meta.concrete_fields if f.column not in ("id", "seq", "sealed_at")
)
# The typed columns, which go through their fields' own get_db_prep_save (UUID, UTC time, JSON).
_TYPED = {
    f.column: f for f in AuditEvent._meta.concrete_fields if f.column in ("event_id", "occurred_at", "before", "after")
}
# Where the event cannot go as one JSON document (SQLite); see apps.core.fastpath.insert_row.
_INSERT_SQL = (
    f"INSERT INTO audit_event ({', '.join(_INSERT_COLUMNS)}) "
    f"VALUES ({', '.join(['%s'] * len(_INSERT_COLUMNS))}) RETURNING id"
)


def _insert(event: AuditEvent, values: dict) -> None:
    """INSERT one event with one statement: the ORM's ``save()`` machinery costs more than the rest of ``record()``.

    The row is exactly what ``AuditEvent.objects.create`` would have written: the typed columns are
    prepared by their fields, the text columns are written as they are.
    """
    typed, params = _TYPED, []
    for column in _INSERT_COLUMNS:
        field = typed.get(column)
        params.append(values[column] if field is None else field.get_db_prep_save(values[column], connection))
    event._state.adding = False
    event._state.db = connection.alias
    row = Row("audit_event", _INSERT_COLUMNS, params, "id", lambda pk: setattr(event, "pk", pk))
    if not defer_insert(connection.alias, row):  # else written with its change's rows (written_together)
        insert_row(connection, row, _INSERT_SQL)


def record_denial(exc: Any, *, request: Any = None) -> None:
    """Write a denied attempt in its own transaction (the refused change has rolled back)."""
    principal = context.current().principal
    try:
        with transaction.atomic():
            record(
                action=getattr(exc, "audit_action", "") or getattr(exc, "action", "") or "request.denied",
                outcome=Outcome.DENIED,
                actor=principal,
                target=getattr(exc, "target", None) or getattr(exc, "target_ref", None),
                reason=(
                    f"{getattr(exc, 'detail', exc)}"
                    + (f" (permission {exc.action})" if getattr(exc, "action", "") else "")
                    + (f" [{request.method} {request.path}]" if request is not None else "")
                ),
            )
    except Exception:
        logger.exception("could not record a denied attempt")
        raise


def record_unauthenticated(*, request: Any = None, reason: str = "") -> None:
    """Record an unauthenticated attempt, at most once per client address per window.

    Further attempts in the same window are only counted; the next recorded event
    from that address says how many went unrecorded, so the trail cannot be flooded.
    """
    path = f"{request.method} {request.path}" if request is not None else ""
    record_summarised(
        kind="unauth",
        action="auth.rejected",
        actor=Principal.anonymous(),
        reason=f"{reason or 'authentication required'} [{path}]",
    )


def record_summarised(
    *, kind: str, action: str, reason: str, actor: Principal | None = None, target: Any = None
) -> bool:
    """Record a denied attempt of ``kind`` at most once per client address per window; True if written.

    For what a client can repeat at will (unauthenticated requests, sign-in guesses at unknown
    usernames, throttled attempts): the rest of the window's attempts from that address are only
    counted in the cache, and the next recorded event of that kind from that address says how many
    went unrecorded, so a flood costs the trail one row per window
    (``ASSAY_UNAUTHENTICATED_AUDIT_WINDOW_SECONDS``).
    """
    ctx = context.current()
    window = max(1, settings.ASSAY_UNAUTHENTICATED_AUDIT_WINDOW_SECONDS)
    bucket = int(timezone.now().timestamp()) // window
    address = ctx.client_ip or "unknown"
    key = f"assay:{kind}:{address}:{bucket}"
    cache.add(key, 0, timeout=window * 3)
    try:
        count = cache.incr(key)
    except ValueError:
        count = 1
    if count != 1:
        return False
    previous = cache.get(f"assay:{kind}:{address}:{bucket - 1}") or 0
    summary = f"; {previous - 1} more attempt(s) from this address in the previous window" if previous > 1 else ""
    with transaction.atomic():
        record(
            action=action,
            outcome=Outcome.DENIED,
            actor=actor or Principal.anonymous(),
            target=target,
            reason=f"{reason}{summary}",
        )
    return True
