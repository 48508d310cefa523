"""Many writers at once: the chain stays gapless; anonymous floods are summarised, not recorded one by one."""

from __future__ import annotations

import secrets
import threading
import time

import pytest
from django.db import connection, transaction

from apps.audit import services as audit
from apps.audit.chain import seal_pending
from apps.audit.models import AuditEvent
from apps.audit.verification import verify_database
from apps.core.principals import Principal

WRITERS = 16
EVENTS_EACH = 25


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_get_one_gapless_sealed_chain():
    if connection.vendor != "postgresql":
        pytest.skip(
            "SQLite lets one writer in at a time, so there is no concurrent sealing to test; "
            "this runs on PostgreSQL (DATABASE_URL=postgres://..., as .ci/run does)"
        )
    # given: 16 threads, each writing 25 events in transactions of their own
    start = threading.Barrier(WRITERS)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        actor = Principal(kind="service_account", id=n, name=f"ci-{n}")
        try:
            start.wait()
            for i in range(EVENTS_EACH):
                with transaction.atomic():
                    audit.record(action="version.created", actor=actor, target=("version", f"{n}-{i}", f"v{i}"))
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    # when
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # the periodic seal task's run: it takes any event whose writer's own seal found the lock taken
    seal_pending(blocking=True)
    result = verify_database()
    # then
    assert errors == []
    assert AuditEvent.objects.filter(action="version.created").count() == WRITERS * EVENTS_EACH
    seqs = sorted(AuditEvent.objects.values_list("seq", flat=True))
    assert None not in seqs
    assert seqs == list(range(1, len(seqs) + 1))
    assert not AuditEvent.objects.filter(hash="").exists()
    assert result.ok, result.problems
    assert result.events == len(seqs)


@pytest.mark.django_db
def test_unauthenticated_requests_are_recorded_once_per_window_then_summarised(anon_client, settings):
    # given: a short window, and an address of this test's own (the cache may be shared with other runs)
    window = 2
    settings.ASSAY_UNAUTHENTICATED_AUDIT_WINDOW_SECONDS = window
    address = f"198.18.{secrets.randbelow(256)}.{secrets.randbelow(256)}"
    time.sleep(window - time.time() % window + 0.05)  # start at the beginning of a window
    # when: a burst of five anonymous requests
    for _ in range(5):
        assert anon_client.get("/api/v1/audit/events/", REMOTE_ADDR=address).status_code == 401
    # then: one event
    first = list(AuditEvent.objects.filter(client_ip=address))
    assert [(e.action, e.outcome, e.actor_type) for e in first] == [("auth.rejected", "denied", "anonymous")]
    assert "GET /api/v1/audit/events/" in first[0].reason
    # when: the next window's first attempt
    time.sleep(window - time.time() % window + 0.05)
    anon_client.get("/api/v1/audit/events/", REMOTE_ADDR=address)
    # then: it says how many went unrecorded
    events = list(AuditEvent.objects.filter(client_ip=address).order_by("id"))
    assert len(events) == 2
    assert "4 more attempt(s) from this address in the previous window" in events[1].reason
