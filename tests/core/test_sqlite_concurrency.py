"""Many clients writing at once through the real server on the embedded (file) SQLite database:
writers queue on the write lock (busy timeout, BEGIN IMMEDIATE) and every write is answered,
none with a 500 ("database is locked")."""

from __future__ import annotations

import http.client
import json
import threading
from collections import Counter

import pytest
from django.db import connection

from apps.accounts import services as accounts
from apps.accounts.models import Team
from tests.core.test_server import server  # noqa: F401  (the Granian fixture)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(180),
    pytest.mark.skipif(connection.vendor != "sqlite", reason="the embedded SQLite setup"),
]

THREADS = 16
WRITES_EACH = 5


def test_concurrent_writes_through_the_api_never_answer_500(server, make_user, system):  # noqa: F811
    admins = [make_user("admin", username=f"admin{i}") for i in range(4)]
    tokens = [accounts.token_create(actor=system, name="load", user=u, scopes=["admin", "read"])[1] for u in admins]
    statuses: Counter = Counter()
    bodies: list[bytes] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def writer(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server, timeout=60)
        start.wait()
        for i in range(WRITES_EACH):
            body = json.dumps({"name": f"team-{n}-{i}", "description": "written under load"})
            headers = {"Authorization": f"Bearer {tokens[n % len(tokens)]}", "Content-Type": "application/json"}
            conn.request("POST", "/api/v1/teams/", body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            with lock:
                statuses[response.status] += 1
                if response.status != 201:
                    bodies.append(data[:300])
        conn.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert statuses == Counter({201: THREADS * WRITES_EACH}), (statuses, bodies[:3])
    assert Team.objects.filter(name__startswith="team-").count() == THREADS * WRITES_EACH
