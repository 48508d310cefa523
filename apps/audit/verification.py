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
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field

from django.db import connection

from .chain import (
    CANONICAL_VERSION,
    GENESIS,
    JOIN_SEP,
    JOINED_COUNT,
    ROW_COLUMNS,
    _encode_str,
    _json_from_db,
    _row_to_event,
    _select_sql,
    canonical_bytes,
    canonical_text_db,
    compact_select_sql,
    seal_pending,
)

FETCH_CHUNK = 20000
_MEMO_SIZE = 4096  # canonical texts of stored JSON values kept while walking


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


def _iter_chunks(make_select, chunk: int, fix=None) -> Iterator[list]:
    """Lists of rows of ``make_select(where)`` (seq first) in seq order, fetched ahead.

    A healthy chain is gapless, so a range of ``chunk`` sequence numbers is ``chunk``
    rows; ranges (rather than ``ORDER BY seq LIMIT``) keep PostgreSQL on the seq
    index even when the table's statistics are stale after a bulk load. An empty
    range (a gap, or a seq moved far ahead) jumps to the next seq that exists.

    On PostgreSQL the next chunk is fetched on a helper thread while the caller works
    through this one, over the same database connection (so it sees the caller's
    transaction); only one thread uses the connection at a time. The server works and
    the driver waits without the GIL, so fetching overlaps hashing. SQLite fetches in
    the caller's thread: its driver lets go of the GIL for every row and then waits up
    to a switch interval to get it back from the hashing thread, so a helper thread
    made verification slower there, not faster. ``fix(cursor, rows)``, if given, runs
    with the cursor on each chunk and may replace rows before they are handed over.
    """
    connection.ensure_connection()
    dbapi = connection.connection
    placeholder = "?" if connection.vendor == "sqlite" else "%s"
    select = make_select(f"seq > {placeholder} AND seq <= {placeholder}")
    following = f"SELECT MIN(seq) FROM audit_event WHERE seq > {placeholder}"

    def fetch(last: int) -> tuple[list, int]:
        cursor = dbapi.cursor()
        try:
            while True:
                cursor.execute(select, (last, last + chunk))
                rows = cursor.fetchall()
                if rows:
                    if fix is not None:
                        fix(cursor, rows)
                    return rows, last + chunk
                cursor.execute(following, (last,))
                found = cursor.fetchone()[0]
                if found is None:
                    return [], last
                last = found - 1
        finally:
            cursor.close()

    if connection.vendor == "sqlite":  # no helper thread: see above
        last = 0
        while True:
            rows, last = fetch(last)
            if not rows:
                return
            yield rows
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-fetch") as pool:
        pending = pool.submit(fetch, 0)
        while True:
            rows, last = pending.result()
            if not rows:
                return
            pending = pool.submit(fetch, last)
            yield rows


def _compact_rows(chunk: int = FETCH_CHUNK) -> Iterator[tuple]:
    """Sealed rows as (seq, joined text fields, before, after, prev_hash, hash) in seq order.

    See ``chain.compact_select_sql``. A row whose joined text does not split back into
    its fields (a NULL field, an unusual time, a field holding the separator, a seq that
    is not an integer) comes as (seq, None, its canonical text built the general way,
    None, prev_hash, hash) instead.
    """
    full = _select_sql("seq = ?" if connection.vendor == "sqlite" else "seq = %s", "seq")
    sep, count = JOIN_SEP, JOINED_COUNT

    def fix(cursor, rows: list) -> None:
        bad = [i for i, r in enumerate(rows) if r[1] is None or r[1].count(sep) != count or r[0].__class__ is not int]
        for i in bad:
            seq, _, _, _, prev_hash, row_hash = rows[i]
            cursor.execute(full, (seq,))
            rows[i] = (seq, None, canonical_text_db(cursor.fetchone()), None, prev_hash, row_hash)

    with closing(_iter_chunks(compact_select_sql, chunk, fix)) as chunks:
        for rows in chunks:  # closing: a caller that stops early waits for a fetch still running
            yield from rows


def iter_sealed_rows(chunk: int = FETCH_CHUNK) -> Iterator[tuple]:
    """Raw sealed rows (ROW_COLUMNS order) in seq order, fetched in chunks by seq range, one chunk ahead."""
    with closing(_iter_chunks(lambda where: _select_sql(where, "seq"), chunk)) as chunks:
        for rows in chunks:  # closing: a caller that stops early waits for a fetch still running
            yield from rows


def iter_sealed(chunk: int = 5000) -> Iterator[dict]:
    """Sealed events in seq order as dicts of Python values."""
    with closing(iter_sealed_rows(chunk)) as rows:
        for row in rows:
            yield _row_to_event(row)


# ---------------------------------------------------------------------------------------------
# Walking


def walk(rows: Iterable[tuple], checkpoints: list[dict]) -> VerifyResult:
    """Walk rows in ascending seq against verified checkpoints; name the first bad seq.

    Rows are (seq, joined text fields, before, after, prev_hash, hash) as ``_compact_rows``
    gives them; a row whose joined text is None carries its whole canonical text in place
    of ``before``. ``checkpoints`` are dicts with ``seq`` and ``hash`` whose signatures the
    caller already checked. The loop builds each canonical text inline (verification's hot
    path): one call of the JSON string encoder for all sixteen text fields.
    """
    expected_at = {int(c["seq"]): c["hash"] for c in checkpoints}
    problem: Problem | None = None
    prev, expected, checked = GENESIS, 1, 0
    sha256, es, sep, json_text = hashlib.sha256, _encode_str, JOIN_SEP, _json_from_db
    memo: dict = {}  # stored JSON text -> canonical text (values such as {"status": "draft"} recur)
    for seq, joined, before, after, prev_hash, row_hash in rows:
        if seq != expected:
            problem = Problem(expected, f"event {expected} is missing or out of order (found {seq})")
            break
        if prev_hash != prev:
            problem = Problem(seq, "previous-hash link broken (an earlier event was removed or reordered)")
            break
        if joined is None:
            text = before
        else:
            if after is None:
                after = "null"
            else:
                a = memo.get(after)
                if a is None:
                    if len(memo) >= _MEMO_SIZE:
                        memo.clear()
                    a = memo[after] = json_text(after)
                after = a
            if before is None:
                before = "null"
            else:
                b = memo.get(before)
                if b is None:
                    if len(memo) >= _MEMO_SIZE:
                        memo.clear()
                    b = memo[before] = json_text(before)
                before = b
            # _compact_rows checked the count of separators, so this gives 16 fields; p[0] starts
            # with the opening quote and p[15] ends with the closing one.
            p = es(joined).split(sep)
            text = (
                f'{{"action":{p[0]}","actor_id":"{p[1]}","actor_type":"{p[2]}","after":{after},'
                f'"artifact_sha256":"{p[3]}","before":{before},"client_ip":"{p[4]}","event_id":"{p[5]}",'
                f'"occurred_at":"{p[6]}","outcome":"{p[7]}","reason":"{p[8]}","related_id":"{p[9]}",'
                f'"related_type":"{p[10]}","request_id":"{p[11]}","seq":{seq},"source":"{p[12]}",'
                f'"target_id":"{p[13]}","target_type":"{p[14]}","token_id":"{p[15]},"v":{CANONICAL_VERSION}}}'
            )
        digest = sha256((prev + "\n" + text).encode()).hexdigest()
        if digest != row_hash:
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
    rows = (
        (
            e.get("seq"),
            None,
            canonical_bytes({k: e.get(k) for k in ROW_COLUMNS}).decode(),
            None,
            e.get("prev_hash"),
            e.get("hash"),
        )
        for e in events
    )
    return walk(rows, checkpoints)


# ---------------------------------------------------------------------------------------------
# The database


def verify_database() -> VerifyResult:
    """Seal what is pending, then verify the whole table against the checkpoint store."""
    from . import checkpoints

    seal_pending(blocking=True)
    cps = checkpoints.load_verified()
    with closing(_compact_rows()) as rows:  # closing waits for a fetch still running on the connection
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
