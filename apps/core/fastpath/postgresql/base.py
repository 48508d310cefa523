"""Django's PostgreSQL backend, with its per-request health check skipped for a connection that
has just proved itself.

With ``CONN_HEALTH_CHECKS`` Django sends ``SELECT 1`` before the first query of every request
on a persistent connection: a round trip, on a registration, of a dozen. A connection that
committed a transaction, or passed that check, in the last ``HEALTH_CHECK_BYPASS_S`` seconds is
taken as healthy without it, as connection pools do (HikariCP's 500 ms "alive bypass" window).
A connection idle for longer is checked as before, so a database restart still costs no failed
request once the connection has been idle for longer than the window. A connection that breaks
inside the window fails that request; Django then closes it when the request ends, and the next
request opens a new one.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db.backends.postgresql import base
from psycopg.pq import Format

HEALTH_CHECK_BYPASS_S = 0.5

# A threshold no statement reaches by repetition: only statements sent with prepare=True (the
# hot path's, through prepared_cursor()) are prepared; every other query stays as Django sends it.
EXPLICIT_ONLY = 2**31 - 1


class PreparedCursor(base.ServerBindingCursor):
    """Server-side binding, and every statement prepared on its first execution on a connection."""

    def execute(self, query, params=None, *, prepare=True, binary=None):
        return super().execute(query, params, prepare=prepare, binary=binary)

    def close(self):
        """Kept open: the connection's one prepared cursor serves every hot statement in turn
        (each execute replaces the previous result); it goes with its connection."""


class DatabaseOperations(base.DatabaseOperations):
    def last_executed_query(self, cursor, sql, params):
        if isinstance(cursor, PreparedCursor):  # bound by the server: show the statement with its values
            try:
                return self.compose_sql(sql, params)
            except Exception:  # noqa: BLE001 (a debugging aid must not fail the query it describes)
                return sql
        return super().last_executed_query(cursor, sql, params)


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
    _proved_at = float("-inf")
    _prepared: PreparedCursor | None = None

    def get_connection_params(self):
        params = super().get_connection_params()
        # Django turns prepared statements off unless OPTIONS asks (for poolers that cannot keep
        # them). Assay prepares only its hot statements (prepared_cursor) unless
        # DATABASE_PREPARED_STATEMENTS is off; an explicit prepare_threshold option wins.
        explicit = "prepare_threshold" in self.settings_dict["OPTIONS"]
        if not explicit and getattr(settings, "DATABASE_PREPARED_STATEMENTS", True):
            params["prepare_threshold"] = EXPLICIT_ONLY
        return params

    def prepared_cursor(self):
        """A cursor whose statements PostgreSQL parses and plans once per connection.

        For the few statements of the hot path (a registration's token lookup, model lookup,
        number draw and insert), whose text never changes: PostgreSQL keeps their plans for the
        connection's life, which saves it a parse and plan each time. Parameters are bound by the
        server, so a statement must be written for that (``%s`` stands for one value, typed by
        the server). Falls back to an ordinary cursor when prepared statements are off.
        """
        self.close_if_health_check_failed()
        self.ensure_connection()
        connection = self.connection
        if connection.prepare_threshold is None:
            return self.cursor()
        cursor = self._prepared
        if cursor is None or cursor.connection is not connection:  # none yet, or a new connection's
            with self.wrap_database_errors:
                cursor = PreparedCursor(connection)
                loader = connection.adapters.get_loader(base.TIMESTAMPTZ_OID, Format.TEXT)
                if self.timezone != loader.timezone:
                    base.register_tzloader(self.timezone, cursor)
            self._prepared = cursor
        return self._prepare_cursor(cursor)

    def _just_proved(self) -> bool:
        return (
            time.monotonic() - self._proved_at < HEALTH_CHECK_BYPASS_S
            and not self.errors_occurred
            and not self.connection.closed
        )

    def close_if_health_check_failed(self):
        if (
            self.connection is not None
            and self.health_check_enabled
            and not self.health_check_done
            and self._just_proved()
        ):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()
        if self.connection is not None and self.health_check_done:
            self._proved_at = time.monotonic()

    def commit(self):
        super().commit()
        self._proved_at = time.monotonic()

    def note_committed(self):
        """A statement just committed on its own (autocommit): the connection is as proved as by a COMMIT."""
        self._proved_at = time.monotonic()

    def close(self):
        self._proved_at = float("-inf")
        super().close()
