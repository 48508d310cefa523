"""Verification: walk the hash chain against the signed checkpoints and name the first bad event.

One walk from event 1 recomputes every event's hash from its content and the
previous hash, compares every link (``prev_hash`` = the hash before) and, at each
checkpointed seq, the signed hash; it stops at the first problem.

What is detected, and the sequence number named:

- a modified row: that row (its content no longer matches its hash);
- a deleted or reordered row: the first missing or misplaced one (gap or broken link);
- rows rewritten with every later hash recomputed (no key needed for that): the
  row after the last signed checkpoint that still matches (the next one does not);
- a tail cut off before the last checkpoint: the first row missing from the tail;
- a checkpoint that does not verify with a trusted key: named by its own seq.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field

from django.db import connection

from .chain import GENESIS, ROW_COLUMNS, _row_to_event, _select_sql, canonical_bytes, canonical_text_db, seal_pending

_SEQ, _PREV, _HASH = 1, len(ROW_COLUMNS) - 2, len(ROW_COLUMNS) - 1
FETCH_CHUNK = 20000


@dataclass
class Problem:
    """One thing wrong with the chain or the checkpoints, at a sequence number."""

    seq: int
    message: str
    kind: str = "chain"


@dataclass
class VerifyResult:
    """The outcome of a walk over the chain: ok, how far it got, and the first problem found."""

    ok: bool
    events: int
    head_seq: int
    head_hash: str
    checkpoints_checked: int
    first_bad_seq: int | None
    problems: list[Problem]
    unsealed: int = 0
    checkpoints_found: int = 0
    last_checkpoint_seq: int | None = None
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "events": self.events,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "checkpoints_found": self.checkpoints_found,
            "checkpoints_checked": self.checkpoints_checked,
            "last_checkpoint_seq": self.last_checkpoint_seq,
            "first_bad_seq": self.first_bad_seq,
            "unsealed": self.unsealed,
            "problems": [{"seq": p.seq, "kind": p.kind, "message": p.message} for p in self.problems],
            "warnings": list(self.warnings),
        }

    def summary(self) -> str:
        """One sentence for people: intact, or the first bad sequence number and why."""
        if self.ok:
            return (
                f"The audit trail is intact: {self.events} events (head #{self.head_seq}), "
                f"{self.checkpoints_checked} signed checkpoint(s) matched."
            )
        first = self.problems[0]
        where = f"first bad sequence number {self.first_bad_seq}" if self.first_bad_seq is not None else "checkpoints"
        return f"The audit trail is NOT intact ({where}): {first.message}."


# ---------------------------------------------------------------------------------------------
# Reading the chain


def iter_sealed_rows(chunk: int = FETCH_CHUNK) -> Iterator[tuple]:
    """Raw sealed rows (ROW_COLUMNS order) in seq order, fetched in chunks by seq range.

    A healthy chain is gapless, so a range of ``chunk`` sequence numbers is ``chunk``
    rows; ranges (rather than ``ORDER BY seq LIMIT``) keep PostgreSQL on the seq
    index even when the table's statistics are stale after a bulk load. An empty
    range (a gap, or a seq moved far ahead) jumps to the next seq that exists.

    The next chunk is fetched on a helper thread while the caller works through this
    one, over the same database connection (so it sees the caller's transaction);
    only one thread uses the connection at a time. The database works and the driver
    waits without the GIL, so fetching overlaps hashing.
    """
    connection.ensure_connection()
    dbapi = connection.connection
    placeholder = "?" if connection.vendor == "sqlite" else "%s"
    select = _select_sql(f"seq > {placeholder} AND seq <= {placeholder}", "seq")
    following = f"SELECT MIN(seq) FROM audit_event WHERE seq > {placeholder}"

    def fetch(last: int) -> tuple[list, int]:
        cursor = dbapi.cursor()
        try:
            while True:
                cursor.execute(select, (last, last + chunk))
                rows = cursor.fetchall()
                if rows:
                    return rows, last + chunk
                cursor.execute(following, (last,))
                found = cursor.fetchone()[0]
                if found is None:
                    return [], last
                last = found - 1
        finally:
            cursor.close()

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-fetch") as pool:
        pending = pool.submit(fetch, 0)
        while True:
            rows, last = pending.result()
            if not rows:
                return
            pending = pool.submit(fetch, last)
            yield from rows


def iter_sealed(chunk: int = 5000) -> Iterator[dict]:
    """Sealed events in seq order as dicts of Python values."""
    with closing(iter_sealed_rows(chunk)) as rows:
        for row in rows:
            yield _row_to_event(row)


# ---------------------------------------------------------------------------------------------
# Walking


def walk(rows: Iterable[Sequence], checkpoints: list[dict], canonical=canonical_text_db) -> VerifyResult:
    """Walk rows (ROW_COLUMNS order, ascending seq) against verified checkpoints; name the first bad seq.

    ``checkpoints`` are dicts with ``seq`` and ``hash`` whose signatures the caller already checked.
    """
    expected_at = {int(c["seq"]): c["hash"] for c in checkpoints}
    problem: Problem | None = None
    prev, expected, checked = GENESIS, 1, 0
    sha256 = hashlib.sha256
    for row in rows:
        seq = row[_SEQ]
        if seq != expected:
            problem = Problem(expected, f"event {expected} is missing or out of order (found {seq})")
            break
        if row[_PREV] != prev:
            problem = Problem(seq, "previous-hash link broken (an earlier event was removed or reordered)")
            break
        digest = sha256((prev + "\n" + canonical(row)).encode()).hexdigest()
        if digest != row[_HASH]:
            problem = Problem(seq, "event content does not match its hash (the row was modified)")
            break
        if seq in expected_at:
            checked += 1
            if expected_at[seq] != digest:
                problem = Problem(
                    seq,
                    "chain does not match the signed checkpoint (events up to here were rewritten)",
                    kind="checkpoint_mismatch",
                )
                break
        prev = digest
        expected += 1
    head_seq = expected - 1
    if problem is None and expected_at and max(expected_at) > head_seq:
        problem = Problem(
            head_seq + 1,
            f"chain ends at {head_seq} but a signed checkpoint covers {max(expected_at)} (the tail was cut off)",
            kind="truncated",
        )
    first_bad = problem.seq if problem else None
    if problem is not None and problem.kind == "checkpoint_mismatch":
        # For a rewritten chain, the first bad event lies after the last checkpoint that still matched.
        earlier = [s for s in expected_at if s < problem.seq]
        first_bad = (max(earlier) + 1) if earlier else 1
        problem.message += f"; the first rewritten event is at or after {first_bad}"
    return VerifyResult(
        ok=problem is None,
        events=head_seq,
        head_seq=head_seq,
        head_hash=prev,
        checkpoints_checked=checked,
        first_bad_seq=first_bad,
        problems=[problem] if problem else [],
        checkpoints_found=len(expected_at),
        last_checkpoint_seq=max(expected_at) if expected_at else None,
    )


def verify_events(events: Iterable[dict], checkpoints: list[dict]) -> VerifyResult:
    """Walk a chain given as dicts of Python values (in seq order) against verified checkpoints."""
    rows = (tuple(e.get(k) for k in ROW_COLUMNS) for e in events)

    def canonical(row: Sequence) -> str:
        return canonical_bytes(dict(zip(ROW_COLUMNS, row, strict=True))).decode()

    return walk(rows, checkpoints, canonical)


# ---------------------------------------------------------------------------------------------
# The database


def verify_database() -> VerifyResult:
    """Seal what is pending, then verify the whole table against the checkpoint store."""
    from . import checkpoints

    seal_pending(blocking=True)
    cps = checkpoints.load_verified()
    with closing(iter_sealed_rows()) as rows:  # closing waits for a fetch still running on the connection
        result = walk(rows, [c.as_dict() for c in cps.valid])
    for bad in cps.invalid:
        seq = bad.get("seq")
        result.problems.append(
            Problem(
                seq if isinstance(seq, int) else 0,
                f"checkpoint {bad.get('_name', '')} for seq {seq} failed verification: {bad.get('_error')}",
                kind="checkpoint_signature",
            )
        )
        result.ok = False
    result.checkpoints_found += len(cps.invalid)
    if not cps.valid and not cps.invalid and result.events:
        result.warnings.append(
            "no signed checkpoints found: a chain recomputed without the key cannot be detected "
            "(run `manage.py audit_checkpoint` or the worker's periodic checkpoint)"
        )
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM audit_event WHERE seq IS NULL")
        result.unsealed = cursor.fetchone()[0]
    return result
