"""Test-only database helpers.

The audit table's triggers refuse DELETE and TRUNCATE, which Django's test
flush (used between transactional tests) relies on. The production triggers
stay as they are: only the test harness steps around them, the way a
database owner could, and puts them back at once. Tamper tests use the same
door to play an attacker with direct database access.
"""

from __future__ import annotations

from contextlib import contextmanager
from urllib.parse import quote

from django.db import connection as default_connection
from django.db.backends.base.operations import BaseDatabaseOperations

from apps.audit import triggers


@contextmanager
def bypass_audit_triggers(connection=None):
    connection = connection or default_connection
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SET session_replication_role = DEFAULT")
    else:
        triggers.drop(connection)
        try:
            yield
        finally:
            triggers.install(connection)


_original_flush = BaseDatabaseOperations.execute_sql_flush


def _flush_around_triggers(self, sql_list):
    if any("audit_" in sql for sql in sql_list):
        with bypass_audit_triggers(self.connection):
            return _original_flush(self, sql_list)
    return _original_flush(self, sql_list)


def patch_test_flush() -> None:
    BaseDatabaseOperations.execute_sql_flush = _flush_around_triggers


def database_url() -> str:
    """The URL of the database this test runs on (pytest-django's test database), for a server or worker process."""
    s = default_connection.settings_dict
    if default_connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    if default_connection.vendor == "postgresql":
        auth = quote(s["USER"] or "", safe="")
        if s["PASSWORD"]:
            auth += ":" + quote(s["PASSWORD"], safe="")
        host = s["HOST"] or "localhost"
        port = f":{s['PORT']}" if s["PORT"] else ""
        return f"postgres://{auth}@{host}{port}/{quote(s['NAME'], safe='')}"
    raise RuntimeError(f"no database URL for {default_connection.vendor}")
