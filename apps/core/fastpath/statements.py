"""Hot-path statements: a prepared cursor, and a row fetched by a unique field with prebuilt SQL."""

from __future__ import annotations

from typing import Any

from django.db import connections, router
from django.db.models import Model


def hot_cursor(connection):
    """A cursor for the hot path's fixed statements: prepared on PostgreSQL (see
    ``apps.core.fastpath.postgresql``), an ordinary cursor elsewhere. Its statements bind their
    parameters on the server: one ``%s`` per value, no client-side formatting.

    On PostgreSQL it is the connection's one prepared cursor, shared by every hot statement
    (the token lookup, the registration's, ``audit.record()``'s insert, the sealer's): fetch
    what a statement returns before calling anything that may run another."""
    prepared = getattr(connection, "prepared_cursor", None)
    return prepared() if prepared is not None else connection.cursor()


class RowByUniqueField:
    """One row of ``model`` by a unique field, with the SELECT and its column converters built once.

    Equivalent to ``first_or_none(model.objects.filter(<field>=value))`` (an ordinary instance
    from ``Model.from_db``), minus the ORM's query compilation on every call, which is worth
    it only on paths as hot as registering a version.
    """

    def __init__(self, model: type[Model], field_name: str) -> None:
        self.model, self.field = model, model._meta.get_field(field_name)
        self._built: dict[str, tuple] = {}

    def _build(self, alias: str) -> tuple:
        connection = connections[alias]
        quote = connection.ops.quote_name
        table = self.model._meta.db_table
        fields = self.model._meta.concrete_fields
        converters = []
        for field in fields:
            col = field.get_col(table)
            converters.append((col, connection.ops.get_db_converters(col) + col.get_db_converters(connection)))
        sql = (
            f"SELECT {', '.join(quote(f.column) for f in fields)} FROM {quote(table)}"
            f" WHERE {quote(self.field.column)} = %s"
        )
        return sql, [f.attname for f in fields], converters

    def get(self, value: Any) -> Model | None:
        alias = router.db_for_read(self.model)
        built = self._built.get(alias)
        if built is None:
            built = self._built[alias] = self._build(alias)
        sql, attnames, converters = built
        connection = connections[alias]
        with hot_cursor(connection) as cursor:
            cursor.execute(sql, [self.field.get_db_prep_value(value, connection)])
            row = cursor.fetchone()
        if row is None:
            return None
        values = list(row)
        for i, (col, funcs) in enumerate(converters):
            for convert in funcs:
                values[i] = convert(values[i], col, connection)
        return self.model.from_db(alias, attnames, values)
