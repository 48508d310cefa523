"""A per-parent counter drawn in one statement: the next number, refused when a digest is taken.

Each parent row keeps the last number it handed out (a model's ``last_version_number``); a draw takes
the next one with a single ``UPDATE ... RETURNING``, which also refuses the draw when the parent already
has a live child with the same digest (so a retried upload, answered 409, uses no number). Outside a
transaction (every API request) the draw commits on its own, so the parent's row is locked for that
one statement only, never across the inserts that follow and their commit: children of one parent are
then written side by side. The price: a write that fails after its draw leaves its number unused.
Inside an outer transaction (tests, scripts) the draw is part of it and rolls back with it.

The draw commits with ``synchronous_commit`` off: it saves a WAL flush per draw, and it is safe because
nobody sees a drawn number until the child row that uses it commits, and that commit's synchronous
flush covers the earlier draw in the WAL. A crash before then forgets both.

``GREATEST(..., MAX(number))`` keeps the counter ahead of any child written without a draw (fixtures,
imports). On PostgreSQL the draw also hands out ids from the sequences of the tables named in
``ids_for``, so rows that point at each other can be written in one statement (``written_together``).
"""

from __future__ import annotations

from django.db import connections, router
from django.db.models import Model

from .statements import hot_cursor


class NumberDraw:
    """The statement that draws ``child``'s next ``number`` under ``parent``, built once per database and mode.

    ``parent_field``: the child's foreign key to the parent; ``counter``: the parent's column that keeps
    the last number; ``digest``: the child's column that must stay unique among live children;
    ``dead``: a (column, value) pair whose rows do not count as live (an invalid version's digest
    may come again). The value is written into the text, not bound: the prepared statement's
    generic plan can then use a partial unique index whose condition names it.
    """

    def __init__(
        self,
        *,
        parent: type[Model],
        counter: str,
        child: type[Model],
        parent_field: str,
        number: str,
        digest: str,
        dead: tuple[str, str],
        ids_for: tuple[type[Model], ...] = (),
    ) -> None:
        self.parent, self.counter, self.child = parent, counter, child
        self.parent_column = child._meta.get_field(parent_field).column
        self.number, self.digest, self.dead, self.ids_for = number, digest, dead, ids_for
        self._statements: dict[tuple[str, bool], str] = {}

    def _sql(self, connection, *, own_transaction: bool) -> str:
        quote = connection.ops.quote_name
        parents, children = quote(self.parent._meta.db_table), quote(self.child._meta.db_table)
        pk, counter, fk = self.parent._meta.pk.column, self.counter, self.parent_column
        number, digest = self.number, self.digest
        dead_column, dead_value = self.dead
        postgresql = connection.vendor == "postgresql"
        greatest = "GREATEST" if postgresql else "MAX"  # SQLite's scalar MAX
        relaxed = own_transaction and postgresql
        ids = ""
        if postgresql and self.ids_for:
            sequences = []
            with connection.cursor() as cursor:
                for model in self.ids_for:
                    table, column = model._meta.db_table, model._meta.pk.column
                    cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [table, column])
                    sequences.append(cursor.fetchone()[0])
            if all(sequences):
                ids = "".join(f", nextval('{seq.replace(chr(39), chr(39) * 2)}'::regclass)" for seq in sequences)
        return (
            f"UPDATE {parents} SET {counter} = {greatest}({counter},"
            f" COALESCE((SELECT MAX(v.{number}) FROM {children} v WHERE v.{fk} = {parents}.{pk}), 0)) + 1"
            + (" FROM (SELECT set_config('synchronous_commit', 'off', true)) AS relaxed" if relaxed else "")
            + f" WHERE {parents}.{pk} = %s AND NOT EXISTS (SELECT 1 FROM {children} d"
            f" WHERE d.{fk} = %s AND d.{digest} = %s AND d.{digest} <> '' AND d.{dead_column} <> '{dead_value}')"
            f" RETURNING {counter}{ids}"
        )

    def draw(self, parent_pk: int, digest: str) -> tuple[int, ...] | None:
        """``(number, *ids)``, the ids only on PostgreSQL; None when the digest is taken or the parent is gone."""
        connection = connections[router.db_for_write(self.child)]
        own_transaction = not connection.in_atomic_block
        key = (connection.alias, own_transaction)
        sql = self._statements.get(key)
        if sql is None:
            sql = self._statements[key] = self._sql(connection, own_transaction=own_transaction)
        with hot_cursor(connection) as cursor:
            cursor.execute(sql, [parent_pk, parent_pk, digest or ""])
            row = cursor.fetchone()
        return None if row is None else tuple(row)
