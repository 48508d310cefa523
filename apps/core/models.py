"""Base model fields shared by the domain apps."""

from django.db import models


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
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            obj.pk = cursor.fetchone()[0]
        obj._state.adding = False
        obj._state.db = alias
        return obj
