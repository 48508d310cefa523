"""The hot path's database machinery, behind one seam: prepared statements and single-statement writes.

A registration runs on every CI build, so its few statements skip the ORM's per-call work. Everything
that does so lives here; the services that use it still read check, store, write, audit, publish.

Reads
    ``hot_cursor(connection)``
        A cursor whose statements PostgreSQL parses and plans once per connection (the backend in
        ``apps.core.fastpath.postgresql``); an ordinary cursor elsewhere or with
        ``DATABASE_PREPARED_STATEMENTS`` off. Parameters are bound by the server: one ``%s`` per value.
    ``RowByUniqueField(Model, "field", ...).get(value, ...)``
        One row by a unique field (or set of fields), as ``Model.from_db`` builds it, with the SELECT built once.
    ``RowsByFields(Model, "field", ..., order_by="-created_at").all(value, ...)``
        Every row whose fields equal the values, in order, with the SELECT built once.

Writes
    ``PreparedInsert(Model).create(**fields)``
        ``Model.objects.create`` with the INSERT built once (no signals: for models nobody listens to).
    ``written_together()``
        A block whose inserts (``PreparedInsert``, ``audit.record``) go out as one statement when it
        ends, atomic by itself on PostgreSQL; a plain ``transaction.atomic()`` elsewhere.
    ``after_commit(func)``
        ``transaction.on_commit`` that, inside ``written_together()``, waits for the rows.
    ``Row``, ``defer_insert(alias, row)``, ``insert_row(connection, row, sql)``
        For a writer with its own INSERT (the audit trail's): join the block's statement, or write now.
    ``NumberDraw(...).draw(connection, ...)``
        The next number of a per-parent counter in one ``UPDATE ... RETURNING`` that refuses a taken
        digest, and, on PostgreSQL, the ids of the rows that will use it.

Every statement here is tested on SQLite and PostgreSQL to write and read exactly what the ORM would.
"""

from __future__ import annotations

from .numbering import NumberDraw
from .rows import PreparedInsert, Row, after_commit, defer_insert, insert_row, written_together
from .statements import RowByUniqueField, RowsByFields, hot_cursor

__all__ = [
    "NumberDraw",
    "PreparedInsert",
    "Row",
    "RowByUniqueField",
    "RowsByFields",
    "after_commit",
    "defer_insert",
    "hot_cursor",
    "insert_row",
    "written_together",
]
