"""The audit table is append-only at the database level, on SQLite and PostgreSQL."""

import pytest
from django.db import DatabaseError, connection, transaction

from apps.audit import services as audit
from apps.audit.chain import seal_pending
from apps.audit.models import AuditEvent


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
        AuditEvent.objects.filter(pk=event.pk).update(reason="edited")


@pytest.mark.django_db
def test_an_unsealed_event_cannot_be_changed_except_by_sealing():
    with transaction.atomic():
        event = audit.record(action="model.created", target=("model", "1", "churn"))
        # the sealer's step also may not change content
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            AuditEvent.objects.filter(pk=event.pk).update(seq=999, hash="ab" * 32, action="model.deleted")


@pytest.mark.django_db
def test_events_cannot_be_deleted():
    event = _sealed_event()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.django_db
def test_table_cannot_be_truncated_on_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("TRUNCATE exists only on PostgreSQL; SQLite's DELETE is covered above")  # noqa
    _sealed_event()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE audit_event")
