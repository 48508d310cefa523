"""The canonical serialisation is exactly the documented one, and the sealer chains events in order."""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import connection, transaction

from apps.audit import chain, verification
from apps.audit import services as audit
from apps.audit.models import AuditEvent
from apps.core.principals import Principal
from tests.support.db import bypass_audit_triggers


def reference_canonical(event: dict) -> bytes:
    """The definition from the manual (docs/audit.md), written the obvious way."""
    obj = {k: event[k] for k in chain.CHAIN_COLUMNS}
    obj["v"] = 1
    obj["event_id"] = str(obj["event_id"]).replace("-", "")
    occurred = obj["occurred_at"].astimezone(UTC)
    obj["occurred_at"] = occurred.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def an_event(**changes) -> dict:
    event = {
        "seq": 7,
        "event_id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "occurred_at": datetime(2026, 3, 1, 12, 30, 5, 120, tzinfo=UTC),
        "actor_type": "user",
        "actor_id": "42",
        "token_id": "tok_1",
        "source": "api",
        "client_ip": "192.0.2.1",
        "request_id": "req-1",
        "action": "model.updated",
        "outcome": "success",
        "target_type": "model",
        "target_id": "3",
        "related_type": "",
        "related_id": "",
        "before": {"risk_tier": "limited"},
        "after": {"risk_tier": "high", "b": [1, 2.5, None, True], "a": {"z": "ü", "y": "\u2028"}},
        "reason": 'quotes " and \\ and\ncontrol \x01 and emoji 🔒 and ünïcödé',
        "artifact_sha256": "ab" * 32,
    }
    event.update(changes)
    return event


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"before": None, "after": None},
        {"after": {"nested": {"b": 1, "a": [{"y": 1, "x": 0}]}, "float": 0.1, "big": 10**20, "neg": -1.5e-7}},
        {"occurred_at": datetime(2026, 3, 1, 14, 30, 5, 0, tzinfo=timezone(timedelta(hours=2)))},
        {"reason": "", "token_id": "", "client_ip": "", "artifact_sha256": ""},
        {"event_id": "12345678-1234-5678-1234-567812345678"},
        {"target_id": "名前", "actor_id": "\t=cmd"},
    ],
)
def test_the_fast_serialisation_equals_the_documented_definition(changes):
    # given
    event = an_event(**changes)
    # when / then
    assert chain.canonical_bytes(event) == reference_canonical(event)
    expected = hashlib.sha256(b"0" * 64 + b"\n" + reference_canonical(event)).hexdigest()
    assert chain.chain_hash("0" * 64, event) == expected


@pytest.mark.django_db
def test_sealed_hashes_follow_the_documented_definition_from_stored_values():
    # given: events with awkward content, written through the one writer
    with transaction.atomic():
        audit.record(action="model.created", target=("model", "1", "churn"), after=an_event()["after"])
        audit.record(action="model.updated", target=("model", "1", "churn"), reason=an_event()["reason"])
        audit.record(action="model.updated", before={"k": 1.0}, after={"k": 10**20})
    # when
    chain.seal_pending(blocking=True)
    # then: each hash is SHA-256(prev + "\n" + canonical) of the values the ORM reads back
    prev = chain.GENESIS
    for event in AuditEvent.objects.order_by("seq"):
        values = {k: getattr(event, k) for k in chain.CHAIN_COLUMNS}
        assert event.prev_hash == prev
        assert event.hash == hashlib.sha256(prev.encode() + b"\n" + reference_canonical(values)).hexdigest()
        prev = event.hash


@pytest.mark.django_db
def test_the_database_row_path_equals_the_documented_definition():
    # given
    with transaction.atomic():
        audit.record(action="model.created", after=an_event()["after"], reason=an_event()["reason"])
    chain.seal_pending(blocking=True)
    # when
    with connection.cursor() as cursor:
        cursor.execute(chain._select_sql("seq IS NOT NULL", "seq"))
        rows = cursor.fetchall()
    # then
    for row in rows:
        event = AuditEvent.objects.get(pk=row[0])
        values = {k: getattr(event, k) for k in chain.CHAIN_COLUMNS}
        assert chain.canonical_text_db(row).encode() == reference_canonical(values)


@pytest.mark.django_db
def test_the_sealer_numbers_events_gaplessly_in_commit_order():
    # given: three transactions' worth of events
    for i in range(3):
        with transaction.atomic():
            audit.record(action="model.updated", target=("model", str(i), "m"))
            audit.record(action="version.created", target=("version", str(i), "v"))
    # when
    sealed = chain.seal_pending(blocking=True)
    # then
    assert sealed == AuditEvent.objects.count()
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    assert chain.seal_pending(blocking=True) == 0  # idempotent


@pytest.mark.django_db
def test_a_transaction_with_many_events_schedules_one_seal(settings, django_capture_on_commit_callbacks):
    # given: sealing on commit is on
    settings.ASSAY_AUDIT_SEAL_ON_COMMIT = True
    # when
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        for i in range(5):
            audit.record(action="model.updated", actor=Principal.system(), target=("model", str(i), "m"))
    # then
    assert len([c for c in callbacks if c is chain._seal_quietly]) == 1


@pytest.mark.django_db
def test_an_event_in_a_rolled_back_savepoint_does_not_cancel_the_seal_of_the_others(
    settings,
    django_capture_on_commit_callbacks,
):
    # given: sealing on commit is on, and the first event (and its seal) in a savepoint that rolls back
    settings.ASSAY_AUDIT_SEAL_ON_COMMIT = True
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        try:
            with transaction.atomic():
                audit.record(action="model.updated", target=("model", "1", "m"))
                raise RuntimeError("refused")
        except RuntimeError:
            pass
        # when
        audit.record(action="model.updated", target=("model", "2", "m"))
    # then: the surviving event still gets its seal
    assert len([c for c in callbacks if c is chain._seal_quietly]) == 1


@pytest.mark.django_db
def test_without_seal_on_commit_events_wait_for_the_seal_task(settings, django_capture_on_commit_callbacks):
    # given: a deployment that leaves sealing to the periodic task
    settings.ASSAY_AUDIT_SEAL_ON_COMMIT = False
    # when
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        event = audit.record(action="model.updated", target=("model", "1", "m"))
    # then: nothing sealed in the writer; the seal task (worker.tasks.audit.seal) seals it
    assert not [c for c in callbacks if c is chain._seal_quietly]
    event.refresh_from_db()
    assert event.seq is None
    from worker.tasks.audit import seal

    assert seal() >= 1
    event.refresh_from_db()
    assert event.seq is not None and len(event.hash) == 64


@pytest.mark.django_db
def test_randomised_events_hash_exactly_as_documented():
    # given: events with random text (control characters, quotes, non-ASCII) and random JSON values
    rng = random.Random(20260301)
    alphabet = "aZ09 \"\\/\n\r\t\x00\x01\x1f\x7fé€𝄞\u2028\u2029<>&'"

    def text(n=12):
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, n)))

    def value(depth=0):
        kind = rng.randint(0, 6 if depth < 2 else 4)
        if kind == 0:
            return None
        if kind == 1:
            return rng.choice([True, False])
        if kind == 2:
            return rng.choice([rng.randint(-(10**12), 10**12), rng.randint(-(10**30), 10**30), 2**63, -(2**64)])
        if kind == 3:
            return rng.choice([0.1, 1.5, -2.25e-7, 1e16, 3.0, -0.0, 1e-300, 5e-324, 1.7976931348623157e308, 123456.789])
        if kind == 4:
            return text()
        if kind == 5:
            return [value(depth + 1) for _ in range(rng.randint(0, 3))]
        return {text(6): value(depth + 1) for _ in range(rng.randint(0, 3))}

    with transaction.atomic():
        for _ in range(250):
            audit.record(
                action=f"model.{text(8)}",
                actor=Principal(kind="user", id=rng.randint(1, 99), name=text(), token_id=text(6) or None),
                target=(text(6), text(6), text(6)),
                related=(text(6), text(6)),
                before=rng.choice([None, {text(5): value()}]),
                after=rng.choice([None, {text(5): value(), "k": value()}]),
                reason=text(40),
                artifact_sha256=rng.choice(["", "ab" * 32]),
            )
    # when
    chain.seal_pending(blocking=True)
    # then
    prev = chain.GENESIS
    for event in AuditEvent.objects.order_by("seq"):
        values = {k: getattr(event, k) for k in chain.CHAIN_COLUMNS}
        assert event.hash == hashlib.sha256(prev.encode() + b"\n" + reference_canonical(values)).hexdigest()
        prev = event.hash
    assert verification.verify_database().ok


def _awkward_text() -> str:
    """Every ASCII character but DEL (NUL only where the database can hold it) and some beyond."""
    start = 1 if connection.vendor == "postgresql" else 0  # PostgreSQL text cannot hold NUL
    return "".join(chr(c) for c in range(start, 127)) + " ü 名前 \u2028 🔒"


@pytest.mark.django_db
def test_the_database_renders_the_verifiers_text_exactly_as_documented():
    # given: events whose text fields hold every ASCII character, and JSON values that recur
    awkward = _awkward_text()
    with transaction.atomic():
        for i in range(3):
            audit.record(
                action="model.updated",
                target=("model", awkward[-64:], awkward[:64]),
                before={"risk_tier": "limited", "k": awkward},
                after=an_event()["after"] if i else None,
                reason=awkward,
            )
        audit.record(action="model.denied", reason="")
        audit.record(action="model.updated", reason="DEL \x7f is the verifier's separator")
    chain.seal_pending(blocking=True)
    # when: the verifier's rows, as the database renders them
    connection.ensure_connection()
    cursor = connection.connection.cursor()
    cursor.execute(chain.compact_select_sql("seq IS NOT NULL"))
    rows = cursor.fetchall()
    # then: the joined text splits back into exactly the documented field values (but for the row
    # holding the separator, which the verifier builds the general way), and the trail verifies
    assert len(rows) == 5
    for seq, joined, *_ in rows[:4]:
        reference = json.loads(reference_canonical(AuditEvent.objects.get(seq=seq).__dict__ | {"seq": seq}))
        assert joined.split(chain.JOIN_SEP) == [reference[k] for k in chain.TEXT_KEYS]
    assert rows[4][1].count(chain.JOIN_SEP) == chain.JOINED_COUNT + 1
    result = verification.verify_database()
    assert result.ok, result.problems
    assert result.events == 5


@pytest.mark.django_db
def test_a_time_stored_in_another_form_is_verified_the_general_way():
    # given: a sealed event whose time a tool rewrote in another text form of the same instant
    if connection.vendor != "sqlite":
        pytest.skip("only SQLite stores times as text that another tool could write in another form")
    with transaction.atomic():
        audit.record(action="model.updated", reason="kept")
        audit.record(action="model.updated", reason="rewritten")
    chain.seal_pending(blocking=True)
    event = AuditEvent.objects.get(reason="rewritten")
    other_form = event.occurred_at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")
    with bypass_audit_triggers(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_event SET occurred_at = %s WHERE id = %s", [other_form, event.pk])
    # when
    result = verification.verify_database()
    # then: the same instant hashes the same, so the trail is intact
    assert result.ok, result.problems
    assert result.events == 2
