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


class _PreparedSelect:
    """The rows of ``model`` whose ``field_names`` equal the values given, with the SELECT built once."""

    def __init__(self, model: type[Model], *field_names: str, order_by: str = "") -> None:
        if not field_names:
            raise TypeError("name at least one field")
        self.model = model
        self.fields = [model._meta.get_field(name) for name in field_names]
        self.order_by = [(name.startswith("-"), model._meta.get_field(name.lstrip("-"))) for name in order_by.split()]
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
        where = " AND ".join(f"{quote(f.column)} = %s" for f in self.fields)
        sql = f"SELECT {', '.join(quote(f.column) for f in fields)} FROM {quote(table)} WHERE {where}"
        if self.order_by:
            sql += " ORDER BY " + ", ".join(f"{quote(f.column)}{' DESC' if desc else ''}" for desc, f in self.order_by)
        return sql, [f.attname for f in fields], converters

    def _rows(self, values: tuple) -> list[Model]:
        if len(values) != len(self.fields):
            raise TypeError(f"expected {len(self.fields)} value(s), got {len(values)}")
        alias = router.db_for_read(self.model)
        built = self._built.get(alias)
        if built is None:
            built = self._built[alias] = self._build(alias)
        sql, attnames, converters = built
        connection = connections[alias]
        params = [field.get_db_prep_value(value, connection) for field, value in zip(self.fields, values, strict=True)]
        with hot_cursor(connection) as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        found = []
        for row in rows:
            values_ = list(row)
            for i, (col, funcs) in enumerate(converters):
                for convert in funcs:
                    values_[i] = convert(values_[i], col, connection)
            found.append(self.model.from_db(alias, attnames, values_))
        return found


class RowByUniqueField(_PreparedSelect):
    """One row of ``model`` by a unique field (or a unique set of fields), with the SELECT and its column
    converters built once.

    Equivalent to ``first_or_none(model.objects.filter(<field>=value, ...))`` (an ordinary instance
    from ``Model.from_db``), minus the ORM's query compilation on every call, which is worth
    it only on paths as hot as registering a version or asking the gate. A foreign key is given by
    its name and matched by id: ``RowByUniqueField(ModelVersion, "model", "number").get(model_id, 3)``.
    """

    def get(self, *values: Any) -> Model | None:
        rows = self._rows(values)
        return rows[0] if rows else None


class RowsByFields(_PreparedSelect):
    """Every row of ``model`` whose fields equal the values given, in ``order_by`` order ("-created_at id"):
    ``list(model.objects.filter(...).order_by(...))`` with the SELECT built once."""

    def all(self, *values: Any) -> list[Model]:
        return self._rows(values)
