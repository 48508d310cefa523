"""The audit trail is append-only at the database level, on SQLite and PostgreSQL.

Events are written once and never updated, not even by the sealer; seals are inserted
once; an event leaves the sealer's work list only once it has its seal.
"""

import pytest
from django.db import DatabaseError, connection, transaction

from apps.audit import services as audit
from apps.audit.chain import seal_pending
from apps.audit.models import AuditEvent, AuditPending, AuditSeal


def _sealed_event():
    with transaction.atomic():
        event = audit.record(action="model.created", target=("model", "1", "churn"))
    seal_pending(blocking=True)
    event.refresh_from_db()
    return event


@pytest.mark.django_db
def test_a_sealed_event_cannot_be_updated():
    # given
    event = _sealed_event()
    assert event.seq is not None
    # when / then
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.rows.filter(pk=event.pk).update(reason="edited")


@pytest.mark.django_db
def test_an_unsealed_event_cannot_be_updated_either():
    # given: an event on the sealer's work list
    with transaction.atomic():
        event = audit.record(action="model.created", target=("model", "1", "churn"))
    assert AuditPending.objects.filter(event_id=event.pk).exists()
    # when / then: no UPDATE at all, not even one that leaves every value as it is
    for change in ({"action": "model.deleted"}, {"reason": event.reason}):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            AuditEvent.rows.filter(pk=event.pk).update(**change)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_event SET id = id WHERE id = %s", [event.pk])


@pytest.mark.django_db
def test_events_cannot_be_deleted():
    event = _sealed_event()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.rows.filter(pk=event.pk).delete()
    assert AuditEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.django_db
def test_seals_cannot_be_updated_or_deleted():
    event = _sealed_event()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditSeal.objects.filter(seq=event.seq).update(hash="ab" * 32)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_seal WHERE seq = %s", [event.seq])
    assert AuditSeal.objects.get(seq=event.seq).hash == event.hash


@pytest.mark.django_db
def test_an_event_leaves_the_work_list_only_with_its_seal():
    # given: an event not sealed yet
    with transaction.atomic():
        event = audit.record(action="model.created", target=("model", "1", "churn"))
    # when / then: taking it off the list without a seal (which would keep it out of the chain) is refused
    with pytest.raises(DatabaseError, match="audit_pending"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_pending WHERE event_pk = %s", [event.pk])
    with pytest.raises(DatabaseError, match="audit_pending"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_pending SET event_pk = event_pk WHERE event_pk = %s", [event.pk])
    # and the sealer takes it off as it inserts the seal
    assert seal_pending(blocking=True) == 1
    assert not AuditPending.objects.filter(event_id=event.pk).exists()
    assert AuditSeal.objects.filter(event_id=event.pk).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("table", ["audit_event", "audit_seal", "audit_pending"])
def test_tables_cannot_be_truncated_on_postgresql(table):
    if connection.vendor != "postgresql":
        pytest.skip("TRUNCATE exists only on PostgreSQL; SQLite's DELETE is covered above")  # noqa
    _sealed_event()
    with pytest.raises(DatabaseError, match="audit_"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {table} CASCADE")


@pytest.mark.django_db
def test_a_work_list_entry_added_by_hand_neither_stops_the_sealer_nor_seals_twice():
    # given: a sealed event put back on the work list, an entry for no event, and a real pending event
    sealed = _sealed_event()
    with transaction.atomic():
        fresh = audit.record(action="model.updated", target=("model", "1", "churn"))
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO audit_pending (event_pk) VALUES (%s), (%s)", [sealed.pk, 10**12])
    # when
    assert seal_pending(blocking=True) == 1
    # then: the real one is sealed once, the others are gone from the list
    assert AuditSeal.objects.filter(event_id=sealed.pk).count() == 1
    assert AuditSeal.objects.get(event_id=fresh.pk).seq == sealed.seq + 1
    assert not AuditPending.objects.exists()
