"""Exports of the audit trail: CSV for people, JSON Lines for verification.

Both stream sealed events in sequence order, up to the chain head fixed when the
export started (``trail.export_start``), in keyset-paginated chunks, so an
export of millions of rows runs in constant memory and never holds a cursor open
between chunks.

A JSON Lines row carries every chained field exactly as it was hashed (see
``apps.audit.chain``) plus ``seq``, ``prev_hash``, ``hash``, ``actor_name`` and
``target_name``: anyone can recompute each hash and the links between
consecutive rows with a short script (``scripts/verify_audit_export.py``).

CSV cells that a spreadsheet would read as a formula (starting with ``=``, ``+``,
``-``, ``@``, tab or carriage return) are prefixed with a single quote.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC

from django.http import StreamingHttpResponse
from django.utils import timezone

from .chain import format_time
from .filters import EventFilter, apply_filters
from .models import AuditEvent

FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/jsonl; charset=utf-8",
}

# Column order of both formats: the chained fields, the display names, then the chain itself.
EXPORT_FIELDS = (
    "seq",
    "event_id",
    "occurred_at",
    "actor_type",
    "actor_id",
    "actor_name",
    "token_id",
    "source",
    "client_ip",
    "request_id",
    "action",
    "outcome",
    "target_type",
    "target_id",
    "target_name",
    "related_type",
    "related_id",
    "before",
    "after",
    "reason",
    "artifact_sha256",
    "prev_hash",
    "hash",
)
_JSON_FIELDS = (EXPORT_FIELDS.index("before"), EXPORT_FIELDS.index("after"))
_EVENT_ID, _OCCURRED = EXPORT_FIELDS.index("event_id"), EXPORT_FIELDS.index("occurred_at")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CHUNK = 2000


def export_queryset(filters: EventFilter, *, up_to_seq: int):
    """Sealed events matching the filter, up to ``up_to_seq``."""
    qs = AuditEvent.objects.filter(seq__isnull=False, seq__lte=up_to_seq)
    return apply_filters(qs, filters)


def iter_export_rows(filters: EventFilter, *, up_to_seq: int) -> Iterator[tuple]:
    """Rows in EXPORT_FIELDS order with event_id and occurred_at in canonical text form, ascending seq."""
    base = export_queryset(filters, up_to_seq=up_to_seq).order_by("seq")
    last = 0
    while True:
        rows = list(base.filter(seq__gt=last).values_list(*EXPORT_FIELDS)[:CHUNK])
        if not rows:
            return
        for row in rows:
            row = list(row)
            row[_EVENT_ID] = row[_EVENT_ID].hex
            row[_OCCURRED] = format_time(row[_OCCURRED])
            yield row
        last = rows[-1][0]


def jsonl_line(row: list) -> str:
    """One JSON Lines row: an object with EXPORT_FIELDS, non-ASCII kept, compact."""
    return json.dumps(dict(zip(EXPORT_FIELDS, row, strict=True)), ensure_ascii=False, separators=(",", ":")) + "\n"


def csv_safe(value) -> object:
    """Neutralise spreadsheet formulas: a text cell starting with = + - @ tab or CR gets a leading quote."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _csv_cells(row: list) -> list:
    cells = list(row)
    for i in _JSON_FIELDS:
        if cells[i] is not None:
            cells[i] = json.dumps(cells[i], ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return [csv_safe(c) if c is not None else "" for c in cells]


def iter_export(fmt: str, filters: EventFilter, *, up_to_seq: int) -> Iterator[bytes]:
    """The export as UTF-8 chunks of about CHUNK rows."""
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(EXPORT_FIELDS)
        for count, row in enumerate(iter_export_rows(filters, up_to_seq=up_to_seq), start=1):
            writer.writerow(_csv_cells(row))
            if count % CHUNK == 0:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue().encode()
        return
    lines: list[str] = []
    for row in iter_export_rows(filters, up_to_seq=up_to_seq):
        lines.append(jsonl_line(row))
        if len(lines) >= CHUNK:
            yield "".join(lines).encode()
            lines = []
    if lines:
        yield "".join(lines).encode()


def streaming_response(fmt: str, filters: EventFilter, *, up_to_seq: int) -> StreamingHttpResponse:
    """A download of the export, named after the time it was taken."""
    stamp = timezone.now().astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    response = StreamingHttpResponse(iter_export(fmt, filters, up_to_seq=up_to_seq), content_type=FORMATS[fmt])
    response["Content-Disposition"] = f'attachment; filename="assay-audit-{stamp}.{fmt}"'
    response["X-Audit-Head-Seq"] = str(up_to_seq)
    response["Cache-Control"] = "no-store"
    return response
