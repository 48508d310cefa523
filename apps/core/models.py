"""Base model fields shared by the domain apps, and the hot path's insert helpers."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import DEFAULT_DB_ALIAS, connections, models, transaction


class TimestampedModel(models.Model):
    """Created and updated times, set by the database layer."""

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


def first_or_none(queryset):
    """The row a unique lookup finds, or None: like ``.first()`` without the ORDER BY it compiles and sends."""
    rows = list(queryset.order_by()[:1])
    return rows[0] if rows else None


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
        self._built: dict[str, tuple[str, list]] = {}

    def _build(self, alias: str) -> tuple[str, list]:
        from django.db import connections

        connection = connections[alias]
        meta = self.model._meta
        fields = [f for f in meta.local_concrete_fields if self.with_pk or f is not meta.auto_field]
        quote = connection.ops.quote_name
        sql = (
            f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)})"
            f" VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {quote(meta.pk.column)}"
        )
        return sql, fields

    def create(self, **values) -> models.Model:
        from django.db import connections, router

        obj = self.model(**values)
        alias = router.db_for_write(self.model)
        built = self._built.get(alias)
        if built is None:
            built = self._built[alias] = self._build(alias)
        sql, fields = built
        connection = connections[alias]
        params = [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
        obj._state.adding = False
        obj._state.db = alias
        if defer_insert(alias, sql, params, lambda pk: setattr(obj, "pk", pk)):
            return obj  # written with the others at the end of written_together()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            obj.pk = cursor.fetchone()[0]
        return obj


# ---------------------------------------------------------------------------------------------
# Rows written together. A registration writes three rows (its job, the version, the audit event);
# one statement instead of a transaction of three saves four round trips (BEGIN, two INSERTs, COMMIT).


@dataclass
class _Together:
    alias: str
    rows: list[tuple[str, list, Callable[[object], None]]] = field(default_factory=list)
    after: list[Callable[[], None]] = field(default_factory=list)


_together: contextvars.ContextVar[_Together | None] = contextvars.ContextVar("assay_written_together", default=None)


def defer_insert(alias: str, sql: str, params: list, set_pk: Callable[[object], None]) -> bool:
    """Inside ``written_together()`` on its database: keep an ``INSERT ... RETURNING <pk>`` for later, True."""
    together = _together.get()
    if together is None or together.alias != alias:
        return False
    together.rows.append((sql, params, set_pk))
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


def _write(connection, rows: list[tuple[str, list, Callable[[object], None]]]) -> None:
    with connection.cursor() as cursor:
        if len(rows) == 1:
            cursor.execute(rows[0][0], rows[0][1])
        else:
            # Each INSERT is bound on its own, as the client-side binding cursor (Django's default)
            # would bind it: psycopg caches the parsing of a statement of at most 50 parameters,
            # and the three rows of a registration together have about 70. With server-side
            # binding (no mogrify) the parameters go with the combined statement instead.
            mogrify = getattr(cursor.cursor, "mogrify", None)
            if mogrify is not None:
                parts, params = [mogrify(sql, row_params) for sql, row_params, _ in rows], None
            else:
                parts, params = [sql for sql, _, _ in rows], [p for _, row_params, _ in rows for p in row_params]
            ctes = ", ".join(f"w{i} AS ({part})" for i, part in enumerate(parts))
            cursor.execute(
                f"WITH {ctes} SELECT " + ", ".join(f"(SELECT * FROM w{i})" for i in range(len(rows))), params
            )
        keys = cursor.fetchone()
    for (_, _, set_pk), key in zip(rows, keys, strict=True):
        set_pk(key)
