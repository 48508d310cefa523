"""Test-only database helpers.

The audit table's triggers refuse DELETE and TRUNCATE, which Django's test
flush (used between transactional tests) relies on. The production triggers
stay as they are: only the test harness steps around them, the way a
database owner could, and puts them back at once. Tamper tests use the same
door to play an attacker with direct database access.
"""

from __future__ import annotations

from contextlib import contextmanager

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
    if any("audit_event" in sql for sql in sql_list):
        with bypass_audit_triggers(self.connection):
            return _original_flush(self, sql_list)
    return _original_flush(self, sql_list)


def patch_test_flush() -> None:
    BaseDatabaseOperations.execute_sql_flush = _flush_around_triggers
