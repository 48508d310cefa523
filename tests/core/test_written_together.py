"""written_together(): rows inserted in one block are written at once, all or none (apps/core/fastpath/rows.py)."""

from __future__ import annotations

import uuid

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from apps.audit import services as audit
from apps.audit.models import AuditEvent
from apps.core.fastpath import PreparedInsert, after_commit, written_together
from apps.jobs.models import Job

_new_job = PreparedInsert(Job)


def job_row(**values) -> Job:
    return _new_job.create(kind="tests.noop", params={}, **values)


@pytest.mark.django_db(transaction=True)
def test_rows_and_their_event_are_written_at_once_and_callbacks_run_after():
    # given a block that inserts two jobs and an audit event, and asks for a callback after commit
    seen_by_callback: list[int] = []

    # when it runs outside any transaction (as an API request's service does)
    with CaptureQueriesContext(connection) as queries, written_together():
        first, second = job_row(), job_row()
        event = audit.record(action="test.written_together", target=("job", "x", "x"))
        after_commit(lambda: seen_by_callback.append(Job.objects.filter(pk__in=[first.pk, second.pk]).count()))

    # then every row is there with its key, and the callback ran once they were committed
    assert Job.objects.filter(pk__in=[first.pk, second.pk]).count() == 2
    assert AuditEvent.objects.filter(pk=event.pk, action="test.written_together").exists()
    assert seen_by_callback == [2]
    if connection.vendor == "postgresql":
        # in one statement, with no BEGIN or COMMIT of its own, then the callback's read
        assert [q["sql"].split()[0] for q in queries.captured_queries] == ["WITH", "SELECT"]


@pytest.mark.django_db(transaction=True)
def test_a_refused_row_leaves_none_of_the_others_and_no_callback():
    # given a job whose public id the next block reuses (unique)
    taken = job_row()
    called: list[str] = []

    # when a block writes a fresh job, an event, and a job with the taken id
    with pytest.raises(IntegrityError), written_together():
        job_row(target_id="fresh-one")
        audit.record(action="test.refused_together", target=("job", "y", "y"))
        job_row(public_id=taken.public_id)
        after_commit(lambda: called.append("after"))

    # then nothing of it was written, and its callback never ran
    assert not Job.objects.filter(target_id="fresh-one").exists()
    assert not AuditEvent.objects.filter(action="test.refused_together").exists()
    assert called == []


@pytest.mark.django_db(transaction=True)
def test_inside_a_transaction_a_refused_block_leaves_the_transaction_usable():
    # given an outer transaction that has written a job
    taken = job_row()
    with transaction.atomic():
        kept = job_row(target_id="kept")

        # when a block inside it is refused
        with pytest.raises(IntegrityError), written_together():
            job_row(target_id="dropped")
            job_row(public_id=taken.public_id)

        # then the outer transaction goes on (the block ran in a savepoint)
        job_row(target_id="after")

    # and only the block's rows are gone
    assert set(Job.objects.filter(target_id__in=["kept", "dropped", "after"]).values_list("target_id", flat=True)) == {
        "kept",
        "after",
    }
    assert Job.objects.filter(pk=kept.pk).exists()


@pytest.mark.django_db
def test_written_together_stores_what_one_insert_each_would():
    # given the same values written alone and together
    values = {"kind": "tests.noop", "params": {"ünï": [1, None, 2.5], "q": "it's 100% 'quoted'"}, "target_id": "7"}
    alone = _new_job.create(**values)
    with written_together():
        together = _new_job.create(**values)
        _new_job.create(**{**values, "target_id": "8"})

    # then the rows are equal but for their identities and times
    def row(job):
        data = Job.objects.filter(pk=job.pk).values().get()
        for key in ("id", "public_id", "created_at", "updated_at"):
            data.pop(key)
        return data

    assert together.pk and together.pk != alone.pk
    assert row(together) == row(alone)
    assert isinstance(together.public_id, uuid.UUID)


@pytest.mark.django_db
def test_values_of_every_kind_are_written_together_exactly():
    # given a job whose values are of every kind a row can hold: a choices member (a str
    # subclass), text that JSON must escape, nested JSON, an exact time, a null, a number
    from datetime import UTC, datetime

    from apps.jobs.models import JobStatus

    when = datetime(2026, 12, 3, 13, 45, 7, 123456, tzinfo=UTC)
    values = {
        "kind": "tests.kinds",
        "status": JobStatus.RUNNING,
        "progress": 42,
        "message": 'a "quoted" \\ back\\slash,\nnew line, tab\t, ünïcødé and an emoji 🧪',
        "params": {"nested": {"list": [1, 2.5, None, True], "text": "it's"}, "empty": {}},
        "result": None,
        "lease_expires_at": when,
        "principal": ["a", "list", 3],
    }

    # when it is written together with another row
    with written_together():
        job = _new_job.create(**values)
        audit.record(action="test.kinds", target=("job", "k", "k"))

    # then the row holds exactly those values
    stored = Job.objects.get(pk=job.pk)
    for name, value in values.items():
        assert getattr(stored, name) == value, name
    assert stored.status == "running" and stored.lease_expires_at == when


def test_values_outside_json_are_written_as_postgresql_reads_them():
    """Floats JSON cannot spell go as the words PostgreSQL reads; a type with no rule is refused."""
    import decimal
    from datetime import UTC, datetime

    from psycopg.types.json import Jsonb

    from apps.core.fastpath.rows import _jsonable
    from apps.jobs.models import JobStatus

    assert [_jsonable(v) for v in (float("inf"), float("-inf"), float("nan"), 0.1)] == [
        "Infinity",
        "-Infinity",
        "NaN",
        0.1,
    ]
    assert _jsonable(decimal.Decimal("1.50")) == "1.50"
    assert _jsonable(uuid.UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    assert _jsonable(datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)) == "2026-01-02T03:04:05.000006+00:00"
    assert _jsonable(JobStatus.RUNNING) == "running"
    # a JSON field's value is written by the field's own encoder
    when = datetime(2026, 1, 2, tzinfo=UTC)
    assert _jsonable(Jsonb({"at": when}, dumps=lambda o: '{"at": "by the encoder"}')) == {"at": "by the encoder"}
    with pytest.raises(TypeError, match="bytes values cannot be written together"):
        _jsonable(b"raw")
