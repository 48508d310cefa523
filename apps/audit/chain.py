"""The hash chain: canonical serialisation, the sealer and the verifier.

Canonical serialisation (version 1), documented in the README so that an
auditor can re-verify a JSON Lines export with a script of their own:

    canonical = JSON of the object below, keys sorted, separators "," and ":",
                UTF-8, non-ASCII characters kept as they are (no \\u escapes)
    hash      = SHA-256( prev_hash as 64 lowercase hex chars + "\\n" + canonical )
    prev_hash of seq 1 = 64 zeros

The object holds every field except the display names (``actor_name``,
``target_name``), so a person's name can later be erased without breaking the
chain: ``v`` (1), ``seq``, ``event_id``, ``occurred_at`` (UTC,
``YYYY-MM-DDTHH:MM:SS.ffffffZ``), ``actor_type``, ``actor_id``, ``token_id``,
``source``, ``client_ip``, ``request_id``, ``action``, ``outcome``,
``target_type``, ``target_id``, ``related_type``, ``related_id``, ``before``,
``after``, ``reason``, ``artifact_sha256``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection, transaction
from django.utils import timezone

GENESIS = "0" * 64
CANONICAL_VERSION = 1

# Order of the columns the sealer and verifier read; the canonical object is built from them.
CHAIN_COLUMNS = (
    "seq",
    "event_id",
    "occurred_at",
    "actor_type",
    "actor_id",
    "token_id",
    "source",
    "client_ip",
    "request_id",
    "action",
    "outcome",
    "target_type",
    "target_id",
    "related_type",
    "related_id",
    "before",
    "after",
    "reason",
    "artifact_sha256",
)

_encode = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode


def format_time(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_bytes(event: dict) -> bytes:
    """The canonical serialisation of one event given as a dict of CHAIN_COLUMNS values."""
    obj = {k: event[k] for k in CHAIN_COLUMNS}
    obj["v"] = CANONICAL_VERSION
    obj["event_id"] = str(obj["event_id"]).replace("-", "") if obj["event_id"] else ""
    if isinstance(obj["occurred_at"], datetime):
        obj["occurred_at"] = format_time(obj["occurred_at"])
    return _encode(obj).encode("utf-8")


def chain_hash(prev_hash: str, event: dict) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + canonical_bytes(event)).hexdigest()


def _select_sql(where: str, order: str, limit: str = "") -> str:
    cols = ", ".join(("id",) + CHAIN_COLUMNS + ("prev_hash", "hash"))
    return f"SELECT {cols} FROM audit_event WHERE {where} ORDER BY {order} {limit}"


def _row_to_event(row: tuple, cursor_connection=None) -> dict:
    """Map a raw row to the canonical field dict, decoding JSON columns where the driver returns text."""
    event = dict(zip(("id",) + CHAIN_COLUMNS + ("prev_hash", "hash"), row, strict=True))
    for key in ("before", "after"):
        value = event[key]
        if isinstance(value, str | bytes):
            event[key] = json.loads(value)
    occurred = event["occurred_at"]
    if isinstance(occurred, str):  # SQLite returns text through a raw cursor
        occurred = datetime.fromisoformat(occurred)
        if occurred.tzinfo is None:
            occurred = occurred.replace(tzinfo=UTC)
        event["occurred_at"] = occurred
    return event


def _try_lock(blocking: bool) -> bool:
    """Take the sealer's lock for the current transaction (PostgreSQL advisory lock).

    On SQLite the IMMEDIATE transaction already holds the database's single write lock.
    """
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        if blocking:
            cursor.execute("SELECT pg_advisory_xact_lock(727274)")
            return True
        cursor.execute("SELECT pg_try_advisory_xact_lock(727274)")
        return bool(cursor.fetchone()[0])


def seal_pending(*, blocking: bool = False, batch: int = 2000) -> int:
    """Assign seq, prev_hash and hash to every committed, unsealed event, in id order.

    Idempotent and safe to call from any process: one sealer at a time holds the
    lock; a non-blocking caller that finds it taken returns 0 and leaves the work
    to the holder, the periodic seal task or the next reader. Returns the number sealed.
    """
    total = 0
    while True:
        with transaction.atomic():
            if not _try_lock(blocking):
                return total
            with connection.cursor() as cursor:
                cursor.execute("SELECT seq, hash FROM audit_event WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1")
                head = cursor.fetchone()
                seq, prev = (head[0], head[1]) if head else (0, GENESIS)
                cursor.execute(_select_sql("seq IS NULL", "id", f"LIMIT {int(batch)}"))
                rows = cursor.fetchall()
                if not rows:
                    return total
                now = timezone.now()
                updates = []
                for row in rows:
                    event = _row_to_event(row)
                    seq += 1
                    event["seq"] = seq
                    digest = chain_hash(prev, event)
                    updates.append((seq, prev, digest, now, event["id"]))
                    prev = digest
                cursor.executemany(
                    "UPDATE audit_event SET seq = %s, prev_hash = %s, hash = %s, sealed_at = %s WHERE id = %s",
                    updates,
                )
                total += len(rows)
        if len(rows) < batch:
            return total


def seal_after_commit() -> None:
    """Schedule a non-blocking seal for when the current transaction commits."""
    transaction.on_commit(_seal_quietly)


def _seal_quietly() -> None:
    try:
        seal_pending(blocking=False)
    except Exception:  # the periodic seal task and readers retry; never fail the caller's request
        import logging

        logging.getLogger(__name__).exception("sealing the audit trail failed; it will be retried")


# ---------------------------------------------------------------------------------------------
# Verification


@dataclass
class Problem:
    seq: int
    message: str
    kind: str = "chain"


@dataclass
class VerifyResult:
    ok: bool
    events: int
    head_seq: int
    head_hash: str
    checkpoints_checked: int
    first_bad_seq: int | None
    problems: list[Problem]
    unsealed: int = 0

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "events": self.events,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "checkpoints_checked": self.checkpoints_checked,
            "first_bad_seq": self.first_bad_seq,
            "unsealed": self.unsealed,
            "problems": [{"seq": p.seq, "kind": p.kind, "message": p.message} for p in self.problems],
        }


def iter_sealed(chunk: int = 5000) -> Iterator[dict]:
    """Stream sealed events in seq order with a server-side cursor where the database has one."""
    last = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(_select_sql("seq > %s", "seq", f"LIMIT {int(chunk)}"), [last])
            rows = cursor.fetchall()
        if not rows:
            return
        for row in rows:
            yield _row_to_event(row)
        last = rows[-1][1]


def verify_events(events: Iterable[dict], checkpoints: list[dict]) -> VerifyResult:
    """Walk a chain (events in seq order) against verified checkpoints; name the first bad seq.

    ``checkpoints`` are dicts with ``seq`` and ``hash`` whose signatures the caller
    already checked. Detects modified rows (recomputed hash differs), removed or
    reordered rows (gap or wrong prev_hash), a chain recomputed without the key
    (a checkpoint's hash no longer matches) and a tail cut before the last checkpoint.
    """
    expected_at = {int(c["seq"]): c["hash"] for c in checkpoints}
    problems: list[Problem] = []
    prev = GENESIS
    expected_seq = 1
    count = 0
    head_hash = GENESIS
    checked = 0
    for event in events:
        seq = int(event["seq"])
        count += 1
        if seq != expected_seq:
            problems.append(Problem(expected_seq, f"event {expected_seq} is missing or out of order (found {seq})"))
            break
        if event["prev_hash"] != prev:
            problems.append(Problem(seq, "previous-hash link broken (an earlier event was removed or reordered)"))
            break
        digest = chain_hash(prev, event)
        if digest != event["hash"]:
            problems.append(Problem(seq, "event content does not match its hash (the row was modified)"))
            break
        if seq in expected_at:
            checked += 1
            if expected_at[seq] != digest:
                problems.append(
                    Problem(
                        seq,
                        "chain does not match the signed checkpoint (events up to here were rewritten)",
                        kind="checkpoint_mismatch",
                    )
                )
                break
        prev = digest
        head_hash = digest
        expected_seq += 1
    head_seq = expected_seq - 1
    if not problems and expected_at:
        last_checkpoint = max(expected_at)
        if last_checkpoint > head_seq:
            problems.append(
                Problem(head_seq + 1, f"chain ends at {head_seq} but a signed checkpoint covers {last_checkpoint}")
            )
    # For a rewritten chain, the first bad event lies after the last checkpoint that still matched.
    first_bad = problems[0].seq if problems else None
    if problems and problems[0].kind == "checkpoint_mismatch":
        earlier = [s for s in expected_at if s < problems[0].seq]
        first_bad = (max(earlier) + 1) if earlier else 1
        problems[0].message += f"; the first rewritten event is at or after {first_bad}"
    return VerifyResult(
        ok=not problems,
        events=count,
        head_seq=head_seq,
        head_hash=head_hash,
        checkpoints_checked=checked,
        first_bad_seq=first_bad,
        problems=problems,
    )


def verify_database() -> VerifyResult:
    """Seal what is pending, then verify the whole table against the checkpoint store."""
    from . import checkpoints

    seal_pending(blocking=True)
    cps = checkpoints.load_verified()
    result = verify_events(iter_sealed(), [c.as_dict() for c in cps.valid])
    for bad in cps.invalid:
        result.problems.append(Problem(bad.get("seq", 0), f"checkpoint signature invalid: {bad.get('_error')}"))
        result.ok = False
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM audit_event WHERE seq IS NULL")
        result.unsealed = cursor.fetchone()[0]
    return result
