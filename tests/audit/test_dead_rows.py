"""Sealing leaves no dead row version in the events table (PostgreSQL).

The sealer inserts seals and never updates an event, so the events table's statistics show
no update and no dead tuple for what sealing did. (The work list, ``audit_pending``, is a
small queue whose entries the sealer removes; its dead entries are its own table's.)
"""

from __future__ import annotations

import time

import pytest
from django.db import connection, transaction

from apps.audit import services as audit
from apps.audit.chain import seal_pending

pytestmark = pytest.mark.django_db(transaction=True)

N = 200
POLL_SECONDS = 30  # how long to wait for the statistics to arrive: a bound, not a measured time


def _flush_stats() -> None:
    """Ask this session to send its table statistics now (PostgreSQL 15+), rather than within a second or so."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('server_version_num')::int")
        if cursor.fetchone()[0] >= 150000:
            cursor.execute("SELECT pg_stat_force_next_flush()")


def _stats(table: str) -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT n_tup_ins, n_tup_upd, n_tup_del, n_dead_tup FROM pg_stat_user_tables WHERE relname = %s", [table]
        )
        ins, upd, deleted, dead = cursor.fetchone()
    return {"ins": ins, "upd": upd, "del": deleted, "dead": dead}


def _wait_for(table: str, key: str, at_least: int) -> dict[str, int]:
    """The table's statistics once ``key`` has reached ``at_least`` (the writes' report has arrived)."""
    deadline = time.monotonic() + POLL_SECONDS
    while True:
        _flush_stats()
        stats = _stats(table)
        if stats[key] >= at_least or time.monotonic() > deadline:
            assert stats[key] >= at_least, f"{table} statistics did not arrive: {stats}"
            return stats
        time.sleep(0.05)


def test_sealing_updates_no_event_row_and_leaves_no_dead_tuple(settings):
    if connection.vendor != "postgresql":
        pytest.skip("dead tuples and pg_stat_user_tables are PostgreSQL's")  # noqa
    settings.ASSAY_AUDIT_SEAL_ON_COMMIT = False
    _flush_stats()  # this session's earlier statistics, so that the figures below count only what follows
    start_events, start_seals = _stats("audit_event"), _stats("audit_seal")
    # given: N committed events, not sealed yet
    for i in range(N):
        with transaction.atomic():
            audit.record(action="model.updated", target=("model", str(i), f"m{i}"), after={"n": i})
    appended = _wait_for("audit_event", "ins", start_events["ins"] + N)
    # when: the sealer seals them
    assert seal_pending(blocking=True) >= N
    _wait_for("audit_seal", "ins", start_seals["ins"] + N)
    after = _stats("audit_event")
    # then: not one event row was updated or deleted, and sealing added no dead tuple to the events table
    assert after["upd"] == appended["upd"]
    assert after["del"] == appended["del"]
    assert after["dead"] - appended["dead"] < N / 10, (appended, after)
