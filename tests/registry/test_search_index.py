"""``?search=`` on models and datasets is served by trigram indexes on PostgreSQL (migration 0007).

The index must match the SQL Django writes for ``icontains`` exactly (``UPPER(col::text) LIKE
UPPER(...)``), or PostgreSQL scans the table: these tests ask PostgreSQL's planner, with every other
way to read the table priced out, whether the list's own query can use each index. They need PostgreSQL (.ci/run's
second pass).
"""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from apps.registry import selectors

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("trigram indexes are PostgreSQL's (DATABASE_URL=postgres://..., as .ci/run does)")


def _plan(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        # Only a bitmap scan, which needs an index condition, is left: a table scan or a walk over another index
        # (which a full test database's statistics may make look cheaper) is priced out.
        for method in ("seqscan", "indexscan", "indexonlyscan"):
            cursor.execute(f"SET LOCAL enable_{method} = off")
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.fixture
def reader(make_user, principal_of):
    return principal_of(make_user("auditor"))


def test_the_model_search_uses_the_name_and_description_indexes(reader):
    # when the model list is searched
    plan = _plan(selectors.model_list(actor=reader, search="credit"))
    # then both trigram indexes can serve it
    assert "registry_model_name_trgm" in plan, plan
    assert "registry_model_description_trgm" in plan, plan


def test_the_dataset_search_uses_the_name_index(reader):
    plan = _plan(selectors.dataset_list(actor=reader, search="loans"))
    assert "registry_dataset_name_trgm" in plan, plan
