"""Hot-path inserts: PreparedInsert, and rows written together in one statement."""

from __future__ import annotations

import contextvars
import datetime
import decimal
import json
import math
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import DEFAULT_DB_ALIAS, connections, models, router, transaction
from psycopg.types.json import Json, Jsonb

from .statements import hot_cursor

# Field classes (exactly these, not subclasses) whose values of one Python type go to the database
# unchanged: get_db_prep_save(pre_save(obj)) of such a value is the value itself.
_AS_IS: dict[type, type] = {
    **dict.fromkeys((models.CharField, models.TextField, models.SlugField), str),
    **dict.fromkeys(
        (
            models.IntegerField,
            models.SmallIntegerField,
            models.BigIntegerField,
            models.PositiveIntegerField,
            models.PositiveSmallIntegerField,
            models.PositiveBigIntegerField,
            models.AutoField,
            models.BigAutoField,
            models.ForeignKey,
            models.OneToOneField,
        ),
        int,
    ),
    models.BooleanField: bool,
}


class PreparedInsert:
    """``Model.objects.create(**fields)`` for a hot path: the INSERT statement is built once per
    database, and each call only prepares the values (each field's ``pre_save`` and
    ``get_db_prep_save``, as the ORM does: defaults, ``auto_now``, JSON adaptation).

    What it skips is the ORM's per-call work around that: compiling the SQL, the save machinery
    and the ``pre_save``/``post_save`` signals, so use it only for models nobody listens to.
    Equivalent rows: the registry and jobs tests run through it on SQLite and PostgreSQL.
    """

    def __init__(self, model: type[models.Model], *, with_pk: bool = False) -> None:
        """``with_pk``: the caller gives the primary key (drawn from the table's sequence)."""
        self.model, self.with_pk = model, with_pk
        self._built: dict[str, tuple[str, list, tuple[str, ...]]] = {}

    def _build(self, alias: str) -> tuple[str, list]:
        connection = connections[alias]
        meta = self.model._meta
        fields = [f for f in meta.local_concrete_fields if self.with_pk or f is not meta.auto_field]
        quote = connection.ops.quote_name
        sql = (
            f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)})"
            f" VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {quote(meta.pk.column)}"
        )
        # Per field: the Python types whose values its get_db_prep_save returns unchanged (and whose
        # pre_save only reads the attribute), so create() can take them as they are.
        plan = [(f, f.attname, _AS_IS.get(type(f))) for f in fields]
        return sql, plan, tuple(f.column for f in fields)

    def create(self, **values) -> models.Model:
        obj = self.model(**values)
        alias = router.db_for_write(self.model)
        built = self._built.get(alias)
        if built is None:
            built = self._built[alias] = self._build(alias)
        sql, plan, columns = built
        connection = connections[alias]
        attrs = obj.__dict__
        params = []
        for f, attname, as_is in plan:
            if as_is is not None:
                value = attrs[attname]
                if value is None or type(value) is as_is:
                    params.append(value)
                    continue
            params.append(f.get_db_prep_save(f.pre_save(obj, True), connection))
        obj._state.adding = False
        obj._state.db = alias
        meta = self.model._meta
        row = Row(meta.db_table, columns, params, meta.pk.column, lambda pk: setattr(obj, "pk", pk))
        if not defer_insert(alias, row):  # else written with the others at the end of written_together()
            insert_row(connection, row, sql)
        return obj


# ---------------------------------------------------------------------------------------------
# Rows written together. A registration writes three rows (its job, the version, the audit event);
# one statement instead of a transaction of three saves four round trips (BEGIN, two INSERTs, COMMIT).


@dataclass(frozen=True)
class Row:
    """One row to INSERT: its table, its columns and their database values (``get_db_prep_save``'s)."""

    table: str
    columns: tuple[str, ...]
    values: list
    pk: str
    set_pk: Callable[[object], None]


@dataclass
class _Together:
    alias: str
    rows: list[Row] = field(default_factory=list)
    after: list[Callable[[], None]] = field(default_factory=list)


_together: contextvars.ContextVar[_Together | None] = contextvars.ContextVar("assay_written_together", default=None)


def defer_insert(alias: str, row: Row) -> bool:
    """Inside ``written_together()`` on its database: keep the row for the block's one statement, True."""
    together = _together.get()
    if together is None or together.alias != alias:
        return False
    together.rows.append(row)
    return True


def after_commit(func: Callable[[], None], *, using: str | None = None) -> None:
    """``transaction.on_commit``, except that inside ``written_together()`` it waits for the rows to be written."""
    together = _together.get()
    if together is not None:
        together.after.append(func)
    else:
        transaction.on_commit(func, using=using)


@contextmanager
def written_together(using: str | None = None) -> Iterator[None]:
    """Write the rows inserted inside the block (``PreparedInsert``, ``audit.record``) all at once, atomically.

    On PostgreSQL they go out as one statement when the block ends: ``WITH w0 AS (INSERT ...
    RETURNING id), w1 AS (...) SELECT ...``. Outside a transaction that statement is a
    transaction by itself (all rows or none, one commit, no BEGIN or COMMIT round trip);
    inside one it runs in a savepoint, so a refused row (an IntegrityError) leaves the outer
    transaction usable, as ``transaction.atomic()`` would. The rows get their primary keys
    when the block ends, so a row that must point at another needs that key drawn in advance
    (a sequence's ``nextval``), and ``after_commit`` callbacks run once the rows are committed.
    Nothing else may query the database inside the block. Elsewhere (SQLite) the block is a
    plain ``transaction.atomic()``.
    """
    alias = using or DEFAULT_DB_ALIAS
    connection = connections[alias]
    if connection.vendor != "postgresql":
        with transaction.atomic(using=alias):
            yield
        return
    together = _Together(alias)
    token = _together.set(together)
    try:
        yield
    finally:
        _together.reset(token)
    if together.rows:
        if connection.in_atomic_block:
            with transaction.atomic(using=alias):
                _write(connection, together.rows)
        else:
            _write(connection, together.rows)
            note = getattr(connection, "note_committed", None)
            if note is not None:  # a committed statement proves the connection as a COMMIT does
                note()
    for func in together.after:
        transaction.on_commit(func, using=alias)


# The statement of written_together(): each row travels as one JSON document, which PostgreSQL
# turns into the table's row type (json_populate_record). Whatever the rows' values, the text is
# the same for the same tables and columns, so it is prepared once per connection, its plan kept,
# and the driver binds three parameters instead of some seventy.
_together_sql: dict[tuple, str] = {}


def _together_statement(connection, rows: list[Row]) -> str:
    key = tuple((row.table, row.columns, row.pk) for row in rows)
    sql = _together_sql.get(key)
    if sql is None:
        quote = connection.ops.quote_name
        inserts = []
        for row in rows:
            table, columns = quote(row.table), ", ".join(quote(c) for c in row.columns)
            inserts.append(
                f"INSERT INTO {table} ({columns}) SELECT {columns}"
                f" FROM json_populate_record(NULL::{table}, %s::json) RETURNING {quote(row.pk)}"
            )
        if len(inserts) == 1:
            sql = inserts[0]
        else:
            ctes = ", ".join(f"w{i} AS ({part})" for i, part in enumerate(inserts))
            sql = f"WITH {ctes} SELECT " + ", ".join(f"(SELECT * FROM w{i})" for i in range(len(inserts)))
        sql = _together_sql.setdefault(key, sql)
    return sql


_PRIMITIVE = frozenset({str, int, bool, type(None)})  # JSON as they are (exact types: not a subclass)
_encode_record = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
_FLOAT_WORDS = {math.inf: "Infinity", -math.inf: "-Infinity"}  # what PostgreSQL's float input reads


def _jsonable(value):
    """A database value (as ``get_db_prep_save`` gives it) as a value the JSON encoder writes the
    way ``json_populate_record`` reads it back into the column's type."""
    if isinstance(value, Json | Jsonb):  # a JSONField's value
        if value.dumps is None or value.dumps is json.dumps:
            return value.obj
        return json.loads(value.dumps(value.obj))  # the field's own encoder decides what it writes
    if isinstance(value, float):
        return value if math.isfinite(value) else _FLOAT_WORDS.get(value, "NaN")
    if isinstance(value, str | int):  # a subclass, such as a TextChoices member: written as its value
        return value
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} values cannot be written together (apps.core.fastpath.rows._jsonable)")


def _record(row: Row) -> str:
    """The row as one JSON object, column by column."""
    return _encode_record(
        {c: v if type(v) in _PRIMITIVE else _jsonable(v) for c, v in zip(row.columns, row.values, strict=True)}
    )


def insert_row(connection, row: Row, sql: str) -> None:
    """INSERT one row now and give it its key. On PostgreSQL through the prepared JSON statement of
    ``written_together()`` (one bound parameter, a kept plan); elsewhere with ``sql``, the plain
    ``INSERT ... VALUES (%s, ...) RETURNING pk`` of the row's columns."""
    if connection.vendor == "postgresql":
        _write(connection, [row])
        return
    with connection.cursor() as cursor:
        cursor.execute(sql, row.values)
        row.set_pk(cursor.fetchone()[0])


def _write(connection, rows: list[Row]) -> None:
    sql = _together_statement(connection, rows)
    with hot_cursor(connection) as cursor:
        cursor.execute(sql, [_record(row) for row in rows])
        keys = cursor.fetchone()
    for row, key in zip(rows, keys, strict=True):
        row.set_pk(key)
