"""Verification: walk the hash chain against the signed checkpoints and name the first bad event.

The walk recomputes every event's hash from its content and the previous hash,
compares every link (``prev_hash`` = the hash before) and, at each checkpointed
seq, the signed hash; it stops at the first problem. It can be cut into ranges of
sequence numbers walked at once by several processes (``verify_database(workers=)``):
each range starts from the stored ``prev_hash`` of its first row, and the joins are
checked afterwards in order, so the result is the one walk from event 1 would give.

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
import itertools
import logging
import multiprocessing
import os
import sys
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
)

logger = logging.getLogger(__name__)

FETCH_CHUNK = 20000
FIRST_CHUNK = 1000
_MEMO_SIZE = 4096  # canonical texts of stored JSON values kept while walking
# Fewest events a worker process is given: below this, forking and connecting cost more than they save.
PARALLEL_MIN_EVENTS = 25000


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


def _chunk_sizes(chunk: int) -> Iterator[int]:
    """Small first chunks, so the walk starts hashing at once, growing to ``chunk`` rows."""
    size = min(FIRST_CHUNK, chunk)
    while True:
        yield size
        size = min(size * 4, chunk)


def _iter_chunks(
    make_select, chunk: int, fix=None, *, dbapi=None, start: int = 0, stop: int | None = None
) -> Iterator[list]:
    """Lists of rows of ``make_select(where)`` (seq first) in seq order, fetched ahead.

    A healthy chain is gapless, so a range of ``chunk`` sequence numbers is ``chunk``
    rows; ranges (rather than ``ORDER BY seq LIMIT``) keep PostgreSQL on the seq
    index even when the table's statistics are stale after a bulk load. An empty
    range (a gap, or a seq moved far ahead) jumps to the next seq that exists.
    Only rows with ``start < seq <= stop`` are read (no upper bound when ``stop`` is None).

    On PostgreSQL the next chunk is fetched on a helper thread while the caller works
    through this one, over the same database connection (so it sees the caller's
    transaction); only one thread uses the connection at a time. The server works and
    the driver waits without the GIL, so fetching overlaps hashing. SQLite fetches in
    the caller's thread: its driver lets go of the GIL for every row and then waits up
    to a switch interval to get it back from the hashing thread, so a helper thread
    made verification slower there, not faster. ``fix(cursor, rows)``, if given, runs
    with the cursor on each chunk and may replace rows before they are handed over.
    ``dbapi`` is a DB-API connection of the caller's own (a worker process's); by
    default Django's.
    """
    if dbapi is None:
        connection.ensure_connection()
        dbapi = connection.connection
    placeholder = "?" if connection.vendor == "sqlite" else "%s"
    select = make_select(f"seq > {placeholder} AND seq <= {placeholder}")
    following = f"SELECT MIN(seq) FROM audit_seal WHERE seq > {placeholder}"
    if stop is not None:
        following += f" AND seq <= {int(stop)}"

    def fetch(last: int, size: int) -> tuple[list, int]:
        cursor = dbapi.cursor()
        try:
            while True:
                upper = last + size if stop is None else min(last + size, stop)
                if upper <= last:
                    return [], last
                cursor.execute(select, (last, upper))
                rows = cursor.fetchall()
                if rows:
                    if fix is not None:
                        fix(cursor, rows)
                    return rows, upper
                cursor.execute(following, (last,))
                found = cursor.fetchone()[0]
                if found is None:
                    return [], last
                last = found - 1
        finally:
            cursor.close()

    sizes = _chunk_sizes(chunk)
    if connection.vendor == "sqlite":  # no helper thread: see above
        last = start
        while True:
            rows, last = fetch(last, next(sizes))
            if not rows:
                return
            yield rows
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-fetch") as pool:
        pending = pool.submit(fetch, start, next(sizes))
        while True:
            rows, last = pending.result()
            if not rows:
                return
            pending = pool.submit(fetch, last, next(sizes))
            yield rows


def _compact_rows(chunk: int = FETCH_CHUNK, *, dbapi=None, start: int = 0, stop: int | None = None) -> Iterator[tuple]:
    """Sealed rows as (seq, joined text fields, before, after, prev_hash, hash) in seq order.

    See ``chain.compact_select_sql``. A row whose joined text does not split back into
    its fields (a NULL field, an unusual time, a field holding the separator, a seq that
    is not an integer) comes as (seq, None, its canonical text built the general way,
    None, prev_hash, hash) instead. ``dbapi``, ``start`` and ``stop`` as for ``_iter_chunks``.
    """
    full = _select_sql("seq = ?" if connection.vendor == "sqlite" else "seq = %s", "seq")
    sep, count = JOIN_SEP, JOINED_COUNT

    def fix(cursor, rows: list) -> None:
        bad = [i for i, r in enumerate(rows) if r[1] is None or r[1].count(sep) != count or r[0].__class__ is not int]
        for i in bad:
            seq, _, _, _, prev_hash, row_hash = rows[i]
            cursor.execute(full, (seq,))
            rows[i] = (seq, None, canonical_text_db(cursor.fetchone()), None, prev_hash, row_hash)

    chunks = _iter_chunks(compact_select_sql, chunk, fix, dbapi=dbapi, start=start, stop=stop)
    with closing(chunks):  # closing: a caller that stops early waits for a fetch still running
        for rows in chunks:
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


@dataclass
class _Segment:
    """One walk over consecutive rows: where it began and stopped, and the first problem in it.

    The first row's seq and stored ``prev_hash`` are not checked by the walk but by ``_join``
    against the walk before it. ``last_seq`` and ``last_hash`` are the last row that passed
    every check and its recomputed hash (``first_seq - 1`` and ``first_prev`` when none did).
    """

    first_seq: int | None = None  # None: there were no rows
    first_prev: str | None = None
    last_seq: int = 0
    last_hash: str = GENESIS
    checked: int = 0  # checkpoints compared, the failing one included
    problem: Problem | None = None


def _walk_segment(rows: Iterable[tuple], expected_at: dict[int, str]) -> _Segment:
    """Walk rows in ascending seq from the first one, trusting its stored prev_hash for now.

    Rows are (seq, joined text fields, before, after, prev_hash, hash) as ``_compact_rows``
    gives them; a row whose joined text is None carries its whole canonical text in place
    of ``before``. ``expected_at`` maps checkpointed seqs to their verified hashes. The loop
    builds each canonical text inline (verification's hot path): one call of the JSON
    string encoder for all sixteen text fields.
    """
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        return _Segment()
    segment = _Segment(first_seq=first[0], first_prev=first[4])
    if first[0].__class__ is not int:  # _join names it: it is not the seq expected there
        return segment
    problem: Problem | None = None
    prev, expected, checked = first[4], first[0], 0
    sha256, es, sep, json_text = hashlib.sha256, _encode_str, JOIN_SEP, _json_from_db
    memo: dict = {}  # stored JSON text -> canonical text (values such as {"status": "draft"} recur)
    for seq, joined, before, after, prev_hash, row_hash in itertools.chain((first,), rows):
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
    segment.last_seq, segment.last_hash, segment.checked, segment.problem = expected - 1, prev, checked, problem
    return segment


def _join(segments: Iterable[_Segment], expected_at: dict[int, str]) -> VerifyResult:
    """The result of one walk from event 1 over segments that follow each other in seq order.

    Each segment began at its first row's stored ``prev_hash``; here that link and the
    first row's seq are checked against where the walk before stopped, before anything the
    segment found (the order in which one walk checks a row), so the first problem named is
    the one a single walk would name.
    """
    problem: Problem | None = None
    prev, expected, checked = GENESIS, 1, 0
    for segment in segments:
        if segment.first_seq is None:
            continue
        if segment.first_seq.__class__ is not int or segment.first_seq != expected:
            problem = Problem(expected, f"event {expected} is missing or out of order (found {segment.first_seq})")
            break
        if segment.first_prev != prev:
            problem = Problem(expected, "previous-hash link broken (an earlier event was removed or reordered)")
            break
        checked += segment.checked
        prev, expected = segment.last_hash, segment.last_seq + 1
        if segment.problem is not None:
            problem = segment.problem
            break
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


def _checkpoint_hashes(checkpoints: list[dict]) -> dict[int, str]:
    return {int(c["seq"]): c["hash"] for c in checkpoints}


def walk(rows: Iterable[tuple], checkpoints: list[dict]) -> VerifyResult:
    """Walk rows in ascending seq from event 1 against verified checkpoints; name the first bad seq.

    Rows as ``_walk_segment`` takes them; ``checkpoints`` are dicts with ``seq`` and ``hash``
    whose signatures the caller already checked.
    """
    expected_at = _checkpoint_hashes(checkpoints)
    return _join([_walk_segment(rows, expected_at)], expected_at)


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
# Walking ranges in worker processes


def default_workers() -> int:
    """Worker processes worth starting here: one per CPU this process may run on (at most 8)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))


def _can_fork() -> bool:
    """Whether forked workers with connections of their own would see the chain this connection sees."""
    if sys.platform == "win32" or "fork" not in multiprocessing.get_all_start_methods():
        return False
    if connection.in_atomic_block:  # this transaction's own rows are invisible to other connections
        return False
    if connection.vendor == "postgresql":
        return True
    return connection.vendor == "sqlite" and not connection.is_in_memory_db()


def _own_connection():
    """A DB-API connection made as Django makes one (its adapters and settings), in autocommit mode.

    For a forked worker: the connection it inherited belongs to the parent and is never used or
    closed there (the worker ends with ``os._exit``, which runs no finalizers).
    """
    params = connection.get_connection_params()
    if connection.vendor != "postgresql":
        return connection.get_new_connection(params)
    dbapi = connection.Database.connect(**params, autocommit=True)
    role = connection.settings_dict["OPTIONS"].get("assume_role")
    if role:  # as Django's own connections do
        from psycopg import sql

        dbapi.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
    return dbapi


def _walk_range_in_worker(sender, start: int, stop: int | None, expected_at: dict[int, str]) -> None:
    """In a forked worker: walk the rows with ``start < seq <= stop`` and send back the segment."""
    try:
        dbapi = _own_connection()
        try:
            with closing(_compact_rows(dbapi=dbapi, start=start, stop=stop)) as rows:
                segment = _walk_segment(rows, expected_at)
        finally:
            dbapi.close()
        sender.send(("ok", segment))
    except BaseException as exc:  # the parent logs it and walks this range itself
        sender.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        sender.close()


def _walk_range(expected_at: dict[int, str], start: int = 0, stop: int | None = None) -> _Segment:
    """Walk the rows with ``start < seq <= stop`` in this process, on Django's connection."""
    with closing(_compact_rows(start=start, stop=stop)) as rows:  # closing waits for a fetch still running
        return _walk_segment(rows, expected_at)


def _result_of(process, receiver) -> _Segment | None:
    """A worker's segment; None (logged) when it failed or died before sending one."""
    try:
        status, value = receiver.recv()
    except EOFError:
        process.join()
        status, value = "error", f"it ended with exit code {process.exitcode}"
    if status == "ok":
        return value
    logger.warning("audit verification worker %s failed (%s); its range is walked again here", process.name, value)
    return None


def _walk_database(expected_at: dict[int, str], workers: int, min_events_per_worker: int) -> list[_Segment]:
    """Walk the sealed chain in seq order: in one pass, or cut into ranges walked at once.

    With more than one worker (and at least ``min_events_per_worker`` events each), the
    seq range up to the current head is cut into equal ranges; the last one has no upper
    end, so it also takes what is sealed meanwhile, as one walk would. This process walks
    the first range while forked workers walk the others on connections of their own; a
    range whose worker failed (no connection to be had, say) is walked here afterwards.
    Segments after the first one with a problem are not waited for: one walk stops there.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT MAX(seq) FROM audit_seal")
        head = cursor.fetchone()[0] or 0
    parts = min(workers, head // max(min_events_per_worker, 1))
    if parts <= 1 or not _can_fork():
        return [_walk_range(expected_at)]
    bounds = [head * i // parts for i in range(parts)] + [None]
    context = multiprocessing.get_context("fork")
    started: list = []
    try:
        for i in range(1, parts):
            receiver, sender = context.Pipe(duplex=False)
            process = context.Process(
                target=_walk_range_in_worker,
                args=(sender, bounds[i], bounds[i + 1], expected_at),
                name=f"audit-verify-{i}",
                daemon=True,
            )
            process.start()
            sender.close()
            started.append((process, receiver))
        segments = [_walk_range(expected_at, 0, bounds[1])]
        for i, (process, receiver) in enumerate(started, start=1):
            if segments[-1].problem is not None:
                break
            segment = _result_of(process, receiver)
            if segment is None:
                segment = _walk_range(expected_at, bounds[i], bounds[i + 1])
            segments.append(segment)
        return segments
    finally:
        for process, receiver in started:
            if process.is_alive():
                process.terminate()  # only when its result is not needed (or not coming)
            process.join()
            receiver.close()


# ---------------------------------------------------------------------------------------------
# The database


def verify_database(*, workers: int = 1, min_events_per_worker: int = PARALLEL_MIN_EVENTS) -> VerifyResult:
    """Verify the sealed chain against the checkpoint store; a read: it seals nothing.

    ``workers`` > 1 walks ranges of the chain at once in forked processes, each on a
    database connection of its own (``manage.py audit_verify`` does, with one per CPU);
    the result is the same as one walk's. Inside a transaction, or on an in-memory SQLite
    database, other connections would not see the same rows, so the walk is one pass.
    """
    from . import checkpoints

    cps = checkpoints.load_verified()
    expected_at = _checkpoint_hashes([c.as_dict() for c in cps.valid])
    result = _join(_walk_database(expected_at, workers, min_events_per_worker), expected_at)
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
        # Every event without a seal, whether on the work list or not (one kept off it would be named here).
        cursor.execute(
            "SELECT COUNT(*) FROM audit_event WHERE NOT EXISTS "
            "(SELECT 1 FROM audit_seal WHERE audit_seal.event_pk = audit_event.id)"
        )
        result.unsealed = cursor.fetchone()[0]
    return result
