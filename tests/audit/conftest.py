"""Fixtures for the audit trail tests: a trail of real events, checkpoints, tampering helpers."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection, transaction

from apps.audit import checkpoints
from apps.audit import services as audit
from apps.audit.chain import GENESIS, _row_hash, _select_sql, seal_pending
from apps.audit.models import AuditEvent
from apps.core.principals import Principal
from tests.support.db import bypass_audit_triggers
from tests.support.triad import shared_world, world  # noqa: F401 - the triad's objects, built once per module


@pytest.fixture
def write_events(db) -> Callable:
    """write_events(n, **fields) -> appends n events (one transaction each) and seals them; returns them."""

    def write(n: int, *, action: str = "model.updated", actor: Principal | None = None, **fields):
        actor = actor or Principal(kind="user", id=42, name="dana")
        for i in range(n):
            with transaction.atomic():
                audit.record(
                    action=action,
                    actor=actor,
                    target=fields.get("target", ("model", str(i), f"model-{i}")),
                    before=fields.get("before", {"risk_tier": "limited"}),
                    after=fields.get("after", {"risk_tier": "high", "n": i}),
                    reason=fields.get("reason", f"change {i}"),
                )
        seal_pending(blocking=True)
        return list(AuditEvent.objects.order_by("-seq")[:n])[::-1]

    return write


@pytest.fixture
def signing_key(settings):
    """A checkpoint signing key in the test's own folder."""
    return checkpoints.load_signing_key(create=True)


@pytest.fixture
def checkpoint(signing_key) -> Callable:
    """checkpoint() -> signs the current chain head and stores it (the worker's periodic job, run now)."""
    return checkpoints.checkpoint_write


def head_seq() -> int:
    return AuditEvent.objects.filter(seq__isnull=False).order_by("-seq").values_list("seq", flat=True).first() or 0


class Attacker:
    """Someone with write access to the database but not to the signing key."""

    def execute(self, sql: str, params=()) -> None:
        with bypass_audit_triggers(), connection.cursor() as cursor:
            cursor.execute(sql, params)

    def modify(self, seq: int, reason: str = "nothing to see here") -> None:
        self.execute(
            "UPDATE audit_event SET reason = %s WHERE id = (SELECT event_pk FROM audit_seal WHERE seq = %s)",
            [reason, seq],
        )

    def delete(self, *seqs: int) -> None:
        """Remove events and their seals."""
        for seq in seqs:
            with connection.cursor() as cursor:
                cursor.execute("SELECT event_pk FROM audit_seal WHERE seq = %s", [seq])
                found = cursor.fetchone()
            self.execute("DELETE FROM audit_seal WHERE seq = %s", [seq])
            if found:
                self.execute("DELETE FROM audit_event WHERE id = %s", [found[0]])

    def swap(self, a: int, b: int) -> None:
        self.execute("UPDATE audit_seal SET seq = -1 WHERE seq = %s", [a])
        self.execute("UPDATE audit_seal SET seq = %s WHERE seq = %s", [a, b])
        self.execute("UPDATE audit_seal SET seq = %s WHERE seq = -1", [b])

    def rehash_from(self, seq: int, prev: str | None = None) -> None:
        """Recompute prev_hash and hash from ``seq`` to the head, as the sealer would (no key needed).

        ``prev``: link ``seq`` to this hash instead of the hash of the event before it.
        """
        with connection.cursor() as cursor:
            cursor.execute("SELECT hash FROM audit_seal WHERE seq = %s", [seq - 1])
            found = cursor.fetchone()
            cursor.execute(_select_sql("seq >= %s", "seq"), [seq])
            rows = cursor.fetchall()
        if prev is None:
            prev = found[0] if found else GENESIS
        for row in rows:
            digest = _row_hash(prev, row)
            self.execute("UPDATE audit_seal SET prev_hash = %s, hash = %s WHERE event_pk = %s", [prev, digest, row[0]])
            prev = digest


@pytest.fixture
def attacker() -> Attacker:
    return Attacker()
