"""The migration to the seal table carries a sealed trail over unchanged, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from apps.audit.chain import GENESIS, chain_hash, seal_pending
from apps.audit.models import AuditPending, AuditSeal
from apps.audit.verification import verify_database

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("audit", "0003_unsealed_index")]
AFTER = [("audit", "0004_seal_table")]
LATEST = [("audit", "0006_tree_node")]
COLUMNS = (
    "event_id, occurred_at, actor_type, actor_id, actor_name, token_id, source, client_ip, request_id, action, "
    "outcome, target_type, target_id, target_name, related_type, related_id, before, after, reason, "
    "artifact_sha256, seq, prev_hash, hash, sealed_at"
)


def _migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def _old_event(i: int, seq: int | None, prev: str) -> tuple[list, str]:
    """An event row of the single-table trail, sealed (``seq``) as the old sealer did, or not yet."""
    event = {
        "event_id": uuid.uuid4().hex,
        "occurred_at": datetime(2026, 11, 1, 12, 0, i, 123456, tzinfo=UTC),
        "actor_type": "user",
        "actor_id": "7",
        "token_id": "",
        "source": "api",
        "client_ip": "203.0.113.9",
        "request_id": f"req-{i}",
        "action": "model.updated",
        "outcome": "success",
        "target_type": "model",
        "target_id": str(i),
        "related_type": "",
        "related_id": "",
        "before": {"tier": "limited"},
        "after": {"tier": "high", "n": i},
        "reason": f"change {i}",
        "artifact_sha256": "",
        "seq": seq,
    }
    digest = chain_hash(prev, event) if seq is not None else ""
    stamp = event["occurred_at"].strftime("%Y-%m-%d %H:%M:%S.%f")
    row = [
        str(uuid.UUID(event["event_id"])) if connection.vendor == "postgresql" else event["event_id"],
        stamp if connection.vendor == "sqlite" else event["occurred_at"],
        *(event[k] for k in ("actor_type", "actor_id")),
        "Dana",
        *(event[k] for k in ("token_id", "source", "client_ip", "request_id", "action", "outcome")),
        *(event[k] for k in ("target_type", "target_id")),
        f"model {i}",
        *(event[k] for k in ("related_type", "related_id")),
        '{"tier": "limited"}',
        f'{{"tier": "high", "n": {i}}}',
        event["reason"],
        "",
        seq,
        prev if seq is not None else "",
        digest,
        (stamp if connection.vendor == "sqlite" else event["occurred_at"]) if seq is not None else None,
    ]
    return row, digest


def test_sealed_events_move_to_the_seal_table_and_the_chain_still_verifies():
    # given: the single-table trail, three events sealed and one not yet
    _migrate(BEFORE)
    try:
        prev, hashes = GENESIS, []
        with connection.cursor() as cursor:
            for i, seq in enumerate((1, 2, 3, None)):
                row, digest = _old_event(i, seq, prev)
                marks = ", ".join(["%s"] * len(row))
                cursor.execute(f"INSERT INTO audit_event ({COLUMNS}) VALUES ({marks})", row)  # noqa: S608
                if seq is not None:
                    prev = digest
                    hashes.append(digest)
    finally:
        # when: migrating to the seal table
        _migrate(AFTER)
    # then: the seals are as they were, the unsealed event is on the work list, the chain verifies
    assert list(AuditSeal.objects.order_by("seq").values_list("seq", "hash")) == list(
        zip((1, 2, 3), hashes, strict=True)
    )
    assert AuditPending.objects.count() == 1
    result = verify_database()
    assert result.ok, result.problems
    assert (result.head_seq, result.head_hash, result.unsealed) == (3, hashes[-1], 1)
    # and, once the later migrations (the Merkle tree's table among them) are in, the sealer continues the chain
    _migrate(LATEST)
    assert seal_pending(blocking=True) == 1
    assert verify_database().head_seq == 4
