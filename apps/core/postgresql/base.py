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

from django.db.backends.postgresql import base

HEALTH_CHECK_BYPASS_S = 0.5


class DatabaseWrapper(base.DatabaseWrapper):
    _proved_at = float("-inf")

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
