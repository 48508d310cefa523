"""The PostgreSQL backend's health check: skipped right after the connection proved itself,
done (and a dead connection replaced) after it sat idle."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import connection, transaction

from apps.core.fastpath.postgresql.base import HEALTH_CHECK_BYPASS_S

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL backend only (DATABASE_URL=postgres://..., as .ci/run does)")
    assert connection.health_check_enabled, "CONN_HEALTH_CHECKS is on in the settings"


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def start_request() -> None:
    """What Django does when a request starts (request_started -> close_old_connections)."""
    connection.close_if_unusable_or_obsolete()


def count_health_checks(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = connection.is_usable

    def is_usable():
        calls.append(1)
        return real()

    monkeypatch.setattr(connection, "is_usable", is_usable)
    return calls


def test_a_request_right_after_a_commit_skips_the_health_check_round_trip(monkeypatch):
    # given: a request that committed a write
    with transaction.atomic():
        backend_pid()
    checks = count_health_checks(monkeypatch)
    # when: the next request starts at once
    start_request()
    backend_pid()
    # then: no SELECT 1 was sent
    assert checks == []


def test_a_request_right_after_rows_written_together_skips_the_health_check(monkeypatch):
    # given: a request whose rows were written in one statement of their own (no COMMIT call)
    from apps.core.fastpath import PreparedInsert, written_together
    from apps.jobs.models import Job

    start_request()
    backend_pid()
    time.sleep(HEALTH_CHECK_BYPASS_S + 0.1)  # whatever proved the connection before is too old now
    with written_together():
        PreparedInsert(Job).create(kind="tests.noop", params={})
    checks = count_health_checks(monkeypatch)
    # when: the next request starts at once
    start_request()
    backend_pid()
    # then: that statement's commit counted as proof: no SELECT 1 was sent
    assert checks == []


def test_after_an_idle_spell_the_health_check_runs_again(monkeypatch):
    with transaction.atomic():
        backend_pid()
    checks = count_health_checks(monkeypatch)
    time.sleep(HEALTH_CHECK_BYPASS_S + 0.1)
    start_request()
    backend_pid()
    assert checks == [1]


def test_a_connection_killed_while_idle_is_replaced_before_the_request_uses_it():
    # given: a persistent connection, idle past the window, then killed by the server
    old_pid = backend_pid()
    time.sleep(HEALTH_CHECK_BYPASS_S + 0.1)
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [old_pid])
    # when: the next request starts and queries
    start_request()
    new_pid = backend_pid()
    # then: it got a fresh connection instead of an error
    assert new_pid != old_pid
