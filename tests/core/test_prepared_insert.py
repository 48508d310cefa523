"""PreparedInsert writes the same row as Model.objects.create, defaults and JSON included."""

from __future__ import annotations

import pytest

from apps.core.fastpath import PreparedInsert
from apps.jobs.models import Job

pytestmark = pytest.mark.django_db

VALUES = {
    "kind": "registry.verify_version",
    "params": {"version_id": 7, "nested": {"ünïcode": ["a", 1, None, 2.5]}},
    "principal": {"kind": "user", "id": 3, "name": "cora"},
    "target_type": "model_version",
    "target_id": "7",
}


def stored(job: Job) -> dict:
    """Every column of the row, less those that differ between any two rows (id, uuid, times)."""
    row = Job.objects.filter(pk=job.pk).values().get()
    for key in ("id", "public_id", "created_at", "updated_at"):
        assert row.pop(key) is not None, key
    return row


def test_a_prepared_insert_stores_what_the_orm_would(django_assert_num_queries):
    with django_assert_num_queries(1):
        prepared = PreparedInsert(Job).create(**VALUES)
    orm = Job.objects.create(**VALUES)
    assert prepared.pk and prepared.pk != orm.pk and not prepared._state.adding
    assert stored(prepared) == stored(orm)
    fresh = Job.objects.get(pk=prepared.pk)
    assert fresh.params == VALUES["params"] and fresh.status == "queued" and fresh.created_at is not None
    assert fresh.public_id == prepared.public_id
