"""Reading the audit trail writes nothing: the event list, verification and exports seal no event.

Events committed since the last seal show on the list as pending (no sequence number, marked in
the dashboard); exports and verification cover the sealed chain. Sealing is the seal task's, the
writer's own seal on commit (when it is on) and the operator's commands'.
"""

from __future__ import annotations

import json

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from apps.audit import services as audit
from apps.audit.chain import seal_pending
from apps.audit.models import AuditEvent

EVENTS = "/api/v1/audit/events/"
EXPORT = "/api/v1/audit/export/"
VERIFY = "/api/v1/audit/verify/"
WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")
TRAIL_TABLES = ("audit_event", "audit_seal", "audit_pending")


def row_counts() -> dict[str, int]:
    with connection.cursor() as cursor:
        counts = {}
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT count(*) FROM "{table}"')  # noqa: S608 - table names from the schema
            counts[table] = cursor.fetchone()[0]
        return counts


def writes_of(captured) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if q["sql"].lstrip().upper().startswith(WRITES)]


@pytest.fixture
def pending_trail(db, make_user, api_client_for):
    """Three sealed events and two committed but not sealed yet; an auditor's client already used once."""
    client = api_client_for(make_user("auditor", username="alex-auditor"))
    assert client.get(EVENTS).status_code == 200  # a token's first use is recorded: a write, done here
    for i in range(3):
        with transaction.atomic():
            audit.record(action="model.updated", target=("model", str(i), f"m{i}"))
    seal_pending(blocking=True)
    for i in range(2):
        with transaction.atomic():
            audit.record(action="model.created", target=("model", str(10 + i), f"new{i}"))
    return client


def test_the_event_list_writes_nothing_and_shows_pending_events_as_pending(pending_trail):
    pending = AuditEvent.objects.filter(seq__isnull=True).count()
    assert pending >= 2
    before = row_counts()
    # when
    with CaptureQueriesContext(connection) as captured:
        newest = pending_trail.get(EVENTS).json()
        oldest_seq = [e["seq"] for e in newest["results"] if e["seq"] is not None][-1]
        older = pending_trail.get(EVENTS, {"before": oldest_seq + 1, "page_size": 2}).json()
        paged = pending_trail.get(EVENTS, {"page": 1}).json()
    # then: nothing written, nothing sealed
    assert writes_of(captured) == []
    assert row_counts() == before
    assert AuditEvent.objects.filter(seq__isnull=True).count() == pending
    # and the pending events are on top of the newest page, without a sequence number or hash
    top = newest["results"][:pending]
    assert all(e["seq"] is None and e["hash"] == "" and e["sealed_at"] is None for e in top)
    assert {e["action"] for e in top} == {"model.created"}
    rest = newest["results"][pending:]
    assert all(e["seq"] is not None and len(e["hash"]) == 64 for e in rest)
    assert [e["seq"] for e in rest] == sorted((e["seq"] for e in rest), reverse=True)
    # the older pages hold sealed events only, and the numbered pages show the pending ones first too
    assert all(e["seq"] is not None for e in older["results"])
    assert paged["results"][0]["seq"] is None


def test_the_dashboard_marks_pending_events(pending_trail, client, make_user):
    client.force_login(make_user("auditor", username="ann-auditor"))
    assert client.get("/audit/").status_code == 200  # a first visit may record the sign-in's session
    before = row_counts()
    with CaptureQueriesContext(connection) as captured:
        page = client.get("/audit/").content.decode()
    assert writes_of(captured) == []
    assert row_counts() == before
    assert "pending" in page


def test_verification_writes_nothing_and_counts_the_pending_events(pending_trail):
    before = row_counts()
    with CaptureQueriesContext(connection) as captured:
        result = pending_trail.get(VERIFY).json()
    assert writes_of(captured) == []
    assert row_counts() == before
    assert result["ok"] is True
    assert result["unsealed"] == AuditEvent.objects.filter(seq__isnull=True).count() >= 2
    assert result["head_seq"] == AuditEvent.objects.filter(seq__isnull=False).count()


def test_an_export_writes_only_its_own_audit_event_and_holds_the_sealed_chain(pending_trail):
    head = AuditEvent.objects.filter(seq__isnull=False).count()
    before = row_counts()
    # when
    with CaptureQueriesContext(connection) as captured:
        response = pending_trail.get(EXPORT, {"format": "jsonl"})
        rows = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    # then: the one write is the export's own audit event (which joins the work list); no seal
    written = [sql.replace('"', "").split()[:3] for sql in writes_of(captured)]
    assert written == [["INSERT", "INTO", "audit_event"]]
    after = row_counts()
    assert {t: after[t] - before[t] for t in TRAIL_TABLES} == {"audit_event": 1, "audit_seal": 0, "audit_pending": 1}
    assert {t: n for t, n in after.items() if t not in TRAIL_TABLES} == {
        t: n for t, n in before.items() if t not in TRAIL_TABLES
    }
    # and the export is the sealed chain up to the head it started at
    assert [r["seq"] for r in rows] == list(range(1, head + 1))
    assert response["X-Audit-Head-Seq"] == str(head)
