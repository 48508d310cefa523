"""Base model fields shared by the domain apps, and small ORM helpers."""

from __future__ import annotations

from django.db import models


class TimestampedModel(models.Model):
    """Created and updated times, set by the database layer."""

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


# The largest id a row can have (a BigAutoField's); a larger one in a request is refused as input, since
# no database column holds it (SQLite's driver would fail on it rather than find nothing).
MAX_ID = 2**63 - 1


def first_or_none(queryset):
    """The row a unique lookup finds, or None: like ``.first()`` without the ORDER BY it compiles and sends."""
    rows = list(queryset.order_by()[:1])
    return rows[0] if rows else None
