"""How many rows a list holds, at a cost that does not grow with the table.

A list shows its total, but counting a million rows on every page view costs more
than the page itself. So a total is exact up to ``CAP`` rows and bounded above it:

- a list over a whole table (no filter, as an administrator sees it) on PostgreSQL
  takes the planner's row estimate (``pg_class.reltuples``, kept by VACUUM and
  ANALYZE) once the table holds more than ``CAP`` rows, shown as "about 1,000,000";
- any other list counts at most ``CAP + 1`` rows (``SELECT count(*) FROM (SELECT 1
  ... LIMIT CAP + 1)``) and shows "10,000+" when it reaches that.

Both are one query, whatever the table's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from django.core.exceptions import EmptyResultSet
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet

CAP = 10_000


@dataclass(frozen=True)
class Total:
    """A list's size: ``value`` rows, exactly when ``exact``, else at least (capped) or about (estimated) that."""

    value: int
    exact: bool = True
    estimated: bool = False

    @property
    def label(self) -> str:
        """What a page shows: "1,234", "10,000+" or "about 1,000,000"."""
        if self.exact:
            return f"{self.value:,}"
        return f"about {self.value:,}" if self.estimated else f"{self.value:,}+"

    def __str__(self) -> str:
        return self.label


def _whole_table(queryset: QuerySet) -> str | None:
    """The table a queryset reads all of (no filter, no join that could drop rows, no DISTINCT), or None."""
    query = queryset.query
    if query.where or query.distinct or query.combinator or query.is_sliced or query.group_by is not None:
        return None
    return queryset.model._meta.db_table


def total_of(queryset: QuerySet, *, cap: int = CAP) -> Total:
    """The size of ``queryset`` in one query: exact up to ``cap`` rows, estimated or capped above it."""
    connection = connections[queryset.db]
    inner = queryset.order_by().values("pk")[: cap + 1].query
    try:
        sql, params = inner.get_compiler(queryset.db).as_sql()
    except EmptyResultSet:  # a filter that matches nothing by construction (no grant at all)
        return Total(0)
    capped = f"SELECT count(*) FROM ({sql}) AS capped"
    table = _whole_table(queryset) if connection.vendor == "postgresql" else None
    with connection.cursor() as cursor:
        if table is None:
            cursor.execute(capped, params)
            value = cursor.fetchone()[0]
            return Total(cap, exact=False) if value > cap else Total(value)
        # The estimate first; the count only runs (its InitPlan is evaluated lazily) when the table is small.
        cursor.execute(
            f"SELECT CASE WHEN e.n > %s THEN -e.n ELSE ({capped}) END "
            "FROM (SELECT GREATEST(reltuples, 0)::bigint AS n FROM pg_class WHERE oid = %s::regclass) AS e",
            [cap, *params, connection.ops.quote_name(table)],
        )
        value = cursor.fetchone()[0]
    if value < 0:
        return Total(-value, exact=False, estimated=True)
    return Total(cap, exact=False) if value > cap else Total(value)


class BoundedPaginator(Paginator):
    """Django's paginator with a bounded ``count`` (see ``total_of``); ``total`` says how it was obtained.

    Past ``CAP`` rows the last page number is approximate too: a page past the real end is empty.
    """

    @cached_property
    def total(self) -> Total:
        if isinstance(self.object_list, QuerySet):
            return total_of(self.object_list)
        return Total(len(self.object_list))

    @cached_property
    def count(self) -> int:
        return self.total.value
