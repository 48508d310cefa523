"""The hash chain: canonical serialisation, the sealer and the verifier.

Canonical serialisation (version 1), documented in docs/audit.md so that an
auditor can re-verify a JSON Lines export with a script of their own:

    canonical = JSON of the object below, keys sorted, separators "," and ":",
                UTF-8, non-ASCII characters kept as they are (no \\u escapes)
    hash      = SHA-256( prev_hash as 64 lowercase hex chars + "\\n" + canonical )
    prev_hash of seq 1 = 64 zeros

The object holds every field except the display names (``actor_name``,
``target_name``), so a person's name can later be erased without breaking the
chain: ``v`` (1), ``seq``, ``event_id`` (32 lowercase hex digits, no dashes),
``occurred_at`` (UTC, ``YYYY-MM-DDTHH:MM:SS.ffffffZ``), ``actor_type``,
``actor_id``, ``token_id``, ``source``, ``client_ip``, ``request_id``,
``action``, ``outcome``, ``target_type``, ``target_id``, ``related_type``,
``related_id``, ``before``, ``after``, ``reason``, ``artifact_sha256``.

That is exactly ``json.dumps(obj, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`` in Python. The code below produces the same bytes
faster (a fixed key order instead of sorting every row's keys, no per-row
dicts): verification speed is bounded by serialisation, not by SHA-256.
``tests/audit/test_chain.py`` holds the two implementations to each other.

Why a sealer: writers insert events concurrently inside their own transactions,
without a place in the chain, so no request waits on a global lock; the sealer
(one at a time, under a lock) gives committed events the next sequence numbers
and hashes in one ordered pass, as transparency logs do. It INSERTS one
``audit_seal`` row per event and takes the event off the work list
(``audit_pending``); event rows are never updated, so sealing leaves no dead row
version behind in the events table. The sealer runs in the periodic ``audit.seal``
task, after each commit when ``ASSAY_AUDIT_SEAL_ON_COMMIT`` is on, and in the
operator's commands (``audit_checkpoint``, ``audit_seal``); readers never seal: the
event list shows events not yet sealed as pending, and exports and verification
cover the sealed chain.
"""

from __future__ import annotations

import hashlib
import json
import json.encoder
import json.scanner
import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime

from django.db import connection, transaction
from django.utils import timezone

from apps.core.fastpath import after_commit, hot_cursor

from . import tree

logger = logging.getLogger(__name__)

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
# A raw row as the sealer and verifier select it.
ROW_COLUMNS = ("id", *CHAIN_COLUMNS, "prev_hash", "hash")
_SEQ, _PREV, _HASH = 1, len(ROW_COLUMNS) - 2, len(ROW_COLUMNS) - 1

_encode = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode
_encode_str = json.encoder.encode_basestring  # what the encoder above uses for a str
_scan = json.scanner.make_scanner(json.JSONDecoder())


def _make_fast_encode():
    """The C encoder behind ``_encode`` built once (JSONEncoder.encode builds a new one per call)."""
    try:  # (markers, default, encoder, indent, key_separator, item_separator, sort_keys, skipkeys, allow_nan)
        iterencode = json.encoder.c_make_encoder(None, None, _encode_str, None, ":", ",", True, False, True)
    except TypeError:  # pure-Python json, or another signature: correct, just slower
        return _encode

    def encode(value) -> str:
        return "".join(iterencode(value, 0))

    return encode


_encode_fast = _make_fast_encode()


def _json_from_db(value) -> str:
    """Canonical text of a JSON column as the driver returns it (text, or an already decoded value)."""
    if value.__class__ is str:
        try:
            obj, end = _scan(value, 0)
        except StopIteration:
            obj, end = json.loads(value), len(value)
        if end != len(value):  # surrounding whitespace (or worse): let the strict parser decide
            obj = json.loads(value)
        return _encode_fast(obj)
    return _encode(value)


# The canonical object's keys in sorted order, each with a %s slot (v is a constant).
_SORTED_KEYS = sorted((*CHAIN_COLUMNS, "v"))
assert _SORTED_KEYS == [  # the template below depends on this order
    "action",
    "actor_id",
    "actor_type",
    "after",
    "artifact_sha256",
    "before",
    "client_ip",
    "event_id",
    "occurred_at",
    "outcome",
    "reason",
    "related_id",
    "related_type",
    "request_id",
    "seq",
    "source",
    "target_id",
    "target_type",
    "token_id",
    "v",
]
_TEMPLATE = "{" + ",".join(f'"{k}":' + (str(CANONICAL_VERSION) if k == "v" else "%s") for k in _SORTED_KEYS) + "}"


def format_time(value: datetime) -> str:
    """UTC time as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (naive values are taken as UTC)."""
    if value.tzinfo is not None and value.utcoffset():
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _db_time(value) -> str:
    """A timestamp as a driver returns it (datetime on PostgreSQL, text on SQLite) in canonical form."""
    if value.__class__ is str:
        # SQLite holds naive UTC text: "YYYY-MM-DD HH:MM:SS[.ffffff]"
        if len(value) == 26 and value[10] == " ":
            return value[:10] + "T" + value[11:] + "Z"
        if len(value) == 19 and value[10] == " ":
            return value[:10] + "T" + value[11:] + ".000000Z"
        value = datetime.fromisoformat(value)
    return format_time(value)


def _s(value) -> str:
    """One JSON value: strings straight through the C string encoder, anything else the full encoder."""
    return _encode_str(value) if value.__class__ is str else _encode(value)


def _canonical(r: Sequence, event_id: str, occurred_at: str, before, after) -> str:
    # r is a row in ROW_COLUMNS order; the four arguments are already canonical Python values.
    return _TEMPLATE % (
        _s(r[10]),  # action
        _s(r[5]),  # actor_id
        _s(r[4]),  # actor_type
        "null" if after is None else _encode(after),
        _s(r[19]),  # artifact_sha256
        "null" if before is None else _encode(before),
        _s(r[8]),  # client_ip
        _encode_str(event_id),
        _encode_str(occurred_at),
        _s(r[11]),  # outcome
        _s(r[18]),  # reason
        _s(r[15]),  # related_id
        _s(r[14]),  # related_type
        _s(r[9]),  # request_id
        str(r[1]) if r[1].__class__ is int else _encode(r[1]),  # seq
        _s(r[7]),  # source
        _s(r[13]),  # target_id
        _s(r[12]),  # target_type
        _s(r[6]),  # token_id
    )


def _event_id_text(value) -> str:
    if not value:
        return ""
    return value.replace("-", "") if value.__class__ is str else str(value).replace("-", "")


def canonical_text_db(row: Sequence) -> str:
    """Canonical text of a raw database row (ROW_COLUMNS order), as ``_select_sql`` reads it.

    The hot path of verification: the select already renders ``event_id`` and
    ``occurred_at`` in canonical form, text columns go straight to the C string
    encoder, only JSON columns are decoded and re-encoded, and one f-string lays the
    keys out in sorted order. Anything unusual (a driver's datetime, a NULL where
    text was expected) takes the general path, which builds the same text.
    """
    occurred, event_id, before, after, seq = row[3], row[2], row[16], row[17], row[1]
    if occurred.__class__ is not str or len(occurred) != 27 or occurred[10] != "T":
        occurred = _db_time(occurred)
    if event_id.__class__ is not str or len(event_id) != 32 or not event_id.isalnum():
        event_id = _event_id_text(event_id)
    es = _encode_str
    try:
        if seq.__class__ is not int:
            raise TypeError("seq")
        return (
            f'{{"action":{es(row[10])},"actor_id":{es(row[5])},"actor_type":{es(row[4])},'
            f'"after":{"null" if after is None else _json_from_db(after)},"artifact_sha256":{es(row[19])},'
            f'"before":{"null" if before is None else _json_from_db(before)},"client_ip":{es(row[8])},'
            f'"event_id":{es(event_id)},"occurred_at":{es(occurred)},"outcome":{es(row[11])},'
            f'"reason":{es(row[18])},"related_id":{es(row[15])},"related_type":{es(row[14])},'
            f'"request_id":{es(row[9])},"seq":{seq},"source":{es(row[7])},"target_id":{es(row[13])},'
            f'"target_type":{es(row[12])},"token_id":{es(row[6])},"v":{CANONICAL_VERSION}}}'
        )
    except TypeError:  # a non-text value in a text column: encode it the general way
        before = json.loads(before) if before.__class__ is str else before
        after = json.loads(after) if after.__class__ is str else after
        return _canonical(row, event_id, occurred, before, after)


def canonical_bytes(event: dict) -> bytes:
    """The canonical serialisation of one event given as a dict of CHAIN_COLUMNS values (Python values)."""
    row = (None, *(event[k] for k in CHAIN_COLUMNS))
    occurred = event["occurred_at"]
    occurred = format_time(occurred) if isinstance(occurred, datetime) else occurred
    return _canonical(row, _event_id_text(event["event_id"]), occurred, event["before"], event["after"]).encode()


def chain_hash(prev_hash: str, event: dict) -> str:
    """This event's hash given the previous one."""
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + canonical_bytes(event)).hexdigest()


def _row_hash(prev_hash: str, row: Sequence) -> str:
    return hashlib.sha256((prev_hash + "\n" + canonical_text_db(row)).encode()).hexdigest()


def _select_columns(*, sealed: bool = True) -> str:
    """ROW_COLUMNS as SQL; the database renders event_id and occurred_at in canonical text form.

    ``sealed=False``: for events not sealed yet, with NULL and empty texts for the seal's columns.
    """
    cols = list(ROW_COLUMNS)
    if not sealed:
        cols[_SEQ], cols[_PREV], cols[_HASH] = "NULL", "''", "''"
    if connection.vendor == "postgresql":
        cols[2] = "replace(event_id::text, '-', '')"
        cols[3] = """to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
    elif connection.vendor == "sqlite":
        # Django stores naive UTC text "YYYY-MM-DD HH:MM:SS[.ffffff]"; casting skips its datetime converter.
        cols[3] = "CAST(occurred_at AS TEXT)"
    return ", ".join(cols)


# Sealed events with their seals. The two tables share no column name, so columns need no prefix.
SEALED_FROM = "audit_event JOIN audit_seal ON audit_seal.event_pk = audit_event.id"


def _select_sql(where: str, order: str, limit: str = "") -> str:
    """Sealed events (ROW_COLUMNS) matching ``where``, in ``order``."""
    return f"SELECT {_select_columns()} FROM {SEALED_FROM} WHERE {where} ORDER BY {order} {limit}"


def _pending_sql() -> str:
    """The events not sealed yet among those whose ids are given (ROW_COLUMNS, no seq or hashes), in id order.

    The sealer reads the work list's first ids first and then their events by id, so each
    event is one primary-key lookup whatever the planner thinks of the work list's size.
    """
    ids = "id = ANY(%s)" if connection.vendor == "postgresql" else "id IN (SELECT value FROM json_each(%s))"
    return (
        f"SELECT {_select_columns(sealed=False)} FROM audit_event WHERE {ids} "
        "AND NOT EXISTS (SELECT 1 FROM audit_seal WHERE audit_seal.event_pk = audit_event.id) ORDER BY id"
    )


# ---------------------------------------------------------------------------------------------
# The verifier's compact rows: the database joins the sixteen text fields into one string.

# The canonical object's text fields (everything but after, before, seq and v), in sorted key order.
TEXT_KEYS = tuple(k for k in _SORTED_KEYS if k not in ("after", "before", "seq", "v"))
# Joins the text fields in the database. The JSON string encoder passes it through unescaped and
# escapes character by character, so encoding the joined text once and splitting it at this
# separator gives each field's encoding, provided no field holds the separator itself (checked by
# counting: the verifier builds a row whose joined text holds more or fewer the general way).
JOIN_SEP = "\x7f"
JOINED_COUNT = len(TEXT_KEYS) - 1


def _joined_sql() -> str:
    """SQL for the joined text fields (event_id and occurred_at in canonical form).

    PostgreSQL's concat_ws leaves out a NULL field, so its text holds too few separators;
    on SQLite a NULL field or a time not in Django's usual form makes the whole text NULL.
    """
    cols = {k: k for k in TEXT_KEYS}
    if connection.vendor == "postgresql":
        cols["event_id"] = "replace(event_id::text, '-', '')"
        cols["occurred_at"] = """to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
        return f"concat_ws(chr(127), {', '.join(cols[k] for k in TEXT_KEYS)})"
    # Django stores naive UTC text "YYYY-MM-DD HH:MM:SS[.ffffff]" on SQLite. (printf would be cheaper
    # there than ||, but it renders NULL as "" and cuts a text at an embedded NUL character.)
    cols["event_id"] = "replace(event_id, '-', '')"
    cols["occurred_at"] = (
        "CASE WHEN length(occurred_at) IN (19, 26) AND substr(occurred_at, 11, 1) = ' ' "
        "THEN substr(occurred_at, 1, 10) || 'T' || substr(occurred_at, 12) "
        "|| CASE length(occurred_at) WHEN 26 THEN 'Z' ELSE '.000000Z' END END"
    )
    return " || char(127) || ".join(cols[k] for k in TEXT_KEYS)


def compact_select_sql(where: str) -> str:
    """Rows of (seq, joined text fields, before, after, prev_hash, hash) in seq order, JSON as text."""
    json_cols = "before::text, after::text" if connection.vendor == "postgresql" else "before, after"
    return f"SELECT seq, {_joined_sql()}, {json_cols}, prev_hash, hash FROM {SEALED_FROM} WHERE {where} ORDER BY seq"


def _row_to_event(row: Sequence) -> dict:
    """A raw row as a dict of Python values (JSON decoded, time as an aware datetime)."""
    event = dict(zip(ROW_COLUMNS, row, strict=True))
    for key in ("before", "after"):
        if isinstance(event[key], str | bytes):
            event[key] = json.loads(event[key])
    occurred = event["occurred_at"]
    if isinstance(occurred, str):
        occurred = datetime.fromisoformat(occurred)
        event["occurred_at"] = occurred if occurred.tzinfo else occurred.replace(tzinfo=UTC)
    if event["event_id"] and not isinstance(event["event_id"], str):
        event["event_id"] = str(event["event_id"])
    return event


# ---------------------------------------------------------------------------------------------
# Sealing


def _try_lock(blocking: bool) -> bool:
    """Take the sealer's lock for the current transaction (PostgreSQL advisory lock).

    On SQLite the IMMEDIATE transaction already holds the database's single write lock.
    """
    if connection.vendor != "postgresql":
        return True
    # The same statement turns bitmap scans off for the rest of the transaction, so the sealer walks
    # the work list's index in order: a plain index scan marks the entries of rows removed earlier
    # (dead versions) as dead as it passes them, so the next seal skips them instead of
    # revisiting every one until the next VACUUM. (Harmless when the lock is not taken: the
    # transaction ends at once.) The head is read in a later statement, whose snapshot is taken
    # after the lock: a snapshot taken before it could miss the seal of the lock's last holder.
    lock = "pg_advisory_xact_lock" if blocking else "pg_try_advisory_xact_lock"
    with hot_cursor(connection) as cursor:
        cursor.execute(f"SELECT {lock}(727274), set_config('enable_bitmapscan', 'off', true)")
        return blocking or cursor.fetchone()[0] is True


# The sealer's statements on PostgreSQL have fixed texts, prepared once per connection
# (apps.core.fastpath.hot_cursor); the seals of a batch travel as four arrays.
_PG_SEAL = (
    "INSERT INTO audit_seal (seq, event_pk, prev_hash, hash, sealed_at) "
    "SELECT v.seq, v.id, v.prev, v.h, %s FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[]) "
    "AS v(id, seq, prev, h)"
)
# A second statement: a data-modifying CTE's trigger would not see the seals inserted beside it.
_PG_DONE = "DELETE FROM audit_pending WHERE event_pk = ANY(%s::bigint[])"
_HEAD = "SELECT seq, hash FROM audit_seal ORDER BY seq DESC LIMIT 1"


def _write_seals(cursor, seals: list[tuple], now) -> None:
    """Insert the seals (event id, seq, prev_hash, hash) and take their events off the work list."""
    if connection.vendor == "postgresql":
        # Two statements per batch, however large; the work list's trigger checks every removal.
        ids, seqs, prevs, hashes = (list(column) for column in zip(*seals, strict=True))
        cursor.execute(_PG_SEAL, [now, ids, seqs, prevs, hashes])
        _clear(cursor, ids)
        return
    cursor.executemany(
        "INSERT INTO audit_seal (seq, event_pk, prev_hash, hash, sealed_at) VALUES (%s, %s, %s, %s, %s)",
        [(seq, pk, prev, digest, now) for pk, seq, prev, digest in seals],
    )
    _clear(cursor, [pk for pk, _, _, _ in seals])


def _clear(cursor, ids: list[int]) -> None:
    """Take events off the work list (the list's trigger refuses it for an event without a seal)."""
    if connection.vendor == "postgresql":
        cursor.execute(_PG_DONE, [ids])
    else:
        cursor.executemany("DELETE FROM audit_pending WHERE event_pk = %s", [(pk,) for pk in ids])


def seal_pending(*, blocking: bool = False, batch: int = 2000) -> int:
    """Seal every committed event on the work list, in id order: insert its seal, take it off the list.

    Idempotent and safe to call from any process: one sealer at a time holds the
    lock; a non-blocking caller that finds it taken returns 0 and leaves the work
    to the holder or the periodic seal task. The holder looks once more before it
    lets go, so events committed while it sealed are taken along (on PostgreSQL
    each statement sees what has committed since the last). Event rows are never
    updated. Returns the number sealed.
    """
    total = 0
    select, work = _pending_sql(), f"SELECT event_pk FROM audit_pending ORDER BY event_pk LIMIT {int(batch)}"
    while True:
        with transaction.atomic():
            if not _try_lock(blocking):
                return total
            with hot_cursor(connection) as cursor:
                cursor.execute(_HEAD)
                head = cursor.fetchone()
                seq, prev = (head[0], head[1]) if head else (0, GENESIS)
                start, drained = seq, False
                for _ in range(10):  # bounded, so one transaction never grows without end under load
                    cursor.execute(work)
                    ids = [row[0] for row in cursor.fetchall()]
                    if not ids:
                        drained = True
                        break
                    cursor.execute(select, [ids if connection.vendor == "postgresql" else json.dumps(ids)])
                    rows = cursor.fetchall()
                    # An entry put on the list by hand, for an event sealed already or for none, is
                    # just taken off: it must not stop the sealer or seal an event twice.
                    if len(rows) < len(ids):
                        found = {row[0] for row in rows}
                        _clear(cursor, [pk for pk in ids if pk not in found])
                    seals = []
                    for row in rows:
                        seq += 1
                        digest = _row_hash(prev, (row[0], seq, *row[2:]))
                        seals.append((row[0], seq, prev, digest))
                        prev = digest
                    if seals:
                        _write_seals(cursor, seals, timezone.now())
                    total += len(rows)
                if seq // tree.BLOCK > start // tree.BLOCK:  # a block of the Merkle tree was completed
                    tree.extend(cursor, seq)
            if drained:
                return total


def seal_after_commit() -> None:
    """Schedule one non-blocking seal for when the current transaction commits.

    A transaction that records many events schedules the seal once: a callback
    already registered at this savepoint level or an outer one covers this event too
    (it can only be discarded by a rollback that also discards this event).
    """
    if connection.in_atomic_block:
        current = set(connection.savepoint_ids)
        for entry in connection.run_on_commit:
            sids, func = entry[0], entry[1]
            if func is _seal_quietly and sids <= current:
                return
    after_commit(_seal_quietly)  # inside written_together(): once the event's statement has committed


# One thread per process seals at a time; commits meanwhile only raise a flag that it picks up.
_seal_state = threading.Lock()
_seal_requested = False
_sealing = False
_MAX_ROUNDS = 8  # a thread seals for others at most this many rounds before leaving it to the next commit


def _seal_quietly() -> None:
    """After commit: seal, or let the thread of this process that is sealing now take this event along."""
    global _seal_requested, _sealing
    with _seal_state:
        _seal_requested = True
        if _sealing:
            return
        _sealing = True
    rounds = 0
    try:
        while True:
            with _seal_state:  # check and stand down in one step, so no request is dropped in between
                if not _seal_requested or rounds >= _MAX_ROUNDS:
                    _sealing = False
                    return
                _seal_requested = False
            rounds += 1
            try:
                seal_pending(blocking=False)
            except Exception:  # the periodic seal task retries; never fail the caller's request
                logger.exception("sealing the audit trail failed; it will be retried")
    except BaseException:
        with _seal_state:
            _sealing = False
        raise
