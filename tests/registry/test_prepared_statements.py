"""The registration's hot statements are prepared once per PostgreSQL connection (apps/core/fastpath/postgresql).

PostgreSQL then parses and plans them once per connection instead of on every request. These
tests read ``pg_prepared_statements`` on the test's own connection, so they need PostgreSQL.
"""

from __future__ import annotations

import pytest
from django.db import connection

from apps.registry.models import ModelVersion
from tests.registry.fixtures import register_reference

pytestmark = pytest.mark.django_db(transaction=True)

BUCKET = "ml-exports"


@pytest.fixture(autouse=True)
def _postgresql_and_bucket(settings):
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's (DATABASE_URL=postgres://..., as .ci/run does)")
    settings.ASSAY_ALLOWED_S3_BUCKETS = [BUCKET]


def register(actor) -> ModelVersion:
    return register_reference(actor, bucket=BUCKET)


def prepared() -> dict[str, tuple[int, int]]:
    """This connection's prepared statements: the first words of each, with its generic and custom plan counts."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements")
        return {" ".join(sql.split()[:3]): (generic, custom) for sql, generic, custom in cursor.fetchall()}


def test_a_registration_prepares_its_statements_once_and_reuses_their_plans(model, contributor_principal):
    # given what the fixtures prepared on this connection (the model's creation: its audit event)
    fixtures = set(prepared())

    # when ten versions are registered on one connection
    numbers = [register(contributor_principal).number for _ in range(10)]

    # then they got ten numbers, and the model read, the draw and the insert of the job, the
    # version and its event are prepared, once each
    assert numbers == list(range(1, 11))
    statements = {s: counts for s, counts in prepared().items() if s not in fixtures}
    assert any(s.startswith('SELECT "id", "created_at"') for s in statements), statements
    draw = next(counts for s, counts in statements.items() if s.startswith('UPDATE "registry_registeredmodel"'))
    insert = next(counts for s, counts in statements.items() if s.startswith("WITH w0 AS"))
    assert len(statements) == 3, statements
    # and the draw and the insert run on a generic plan once PostgreSQL has seen a few: the draw
    # can use the partial unique index on (model, sha256) only because its status is written out
    assert draw[0] > 0 and insert[0] > 0, {"draw": draw, "insert": insert}


def test_a_new_connection_prepares_them_again(model, contributor_principal):
    # given a registration, then a lost connection (a database restart, a pooler's recycling)
    register(contributor_principal)
    connection.close()

    # when the next registration runs on a new connection
    version = register(contributor_principal)

    # then it succeeds, having prepared its statements there
    assert version.number == 2
    assert len(prepared()) == 3


def test_with_prepared_statements_off_nothing_is_prepared(settings, model, contributor_principal):
    # given DATABASE_PREPARED_STATEMENTS=0 (for a pooler that cannot keep them), on a new connection
    settings.DATABASE_PREPARED_STATEMENTS = False
    connection.close()
    try:
        # when versions are registered
        numbers = [register(contributor_principal).number for _ in range(3)]

        # then they are, and the connection holds no prepared statement
        assert numbers == [1, 2, 3]
        assert prepared() == {}
    finally:
        connection.close()  # the next test's connection prepares again
