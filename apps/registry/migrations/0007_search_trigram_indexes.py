"""Trigram indexes for ``?search=`` on models and datasets (PostgreSQL only).

``?search=word`` filters with ``icontains`` (``UPPER(name::text) LIKE UPPER('%word%')``), which no
B-tree index serves: on 10,000 models every search scanned the table. A GIN index over
``UPPER(column) gin_trgm_ops`` serves exactly that expression. ``pg_trgm`` is a trusted extension
(PostgreSQL 13+): the database's owner may create it. Where it cannot be created (a role without
the right), the migration says so and leaves search as it was (correct, only slower); SQLite, the
embedded default, needs nothing.
"""

from __future__ import annotations

import logging

from django.db import migrations

log = logging.getLogger(__name__)

INDEXES = [
    ("registry_model_name_trgm", "registry_registeredmodel", "name"),
    ("registry_model_description_trgm", "registry_registeredmodel", "description"),
    ("registry_dataset_name_trgm", "registry_dataset", "name"),
]


def create(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
        if cursor.fetchone() is None:
            try:
                cursor.execute("SAVEPOINT assay_trgm")
                cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
                cursor.execute("RELEASE SAVEPOINT assay_trgm")
            except Exception as exc:  # noqa: BLE001 - a missing right leaves search unindexed, never breaks a migration
                cursor.execute("ROLLBACK TO SAVEPOINT assay_trgm")
                log.warning("pg_trgm could not be created (%s): ?search= stays unindexed", type(exc).__name__)
                return
        for name, table, column in INDEXES:
            cursor.execute(
                f'CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin ((UPPER("{column}"::text)) gin_trgm_ops)'
            )


def drop(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for name, _table, _column in INDEXES:
            cursor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("registry", "0006_dataset_created_index")]

    operations = [migrations.RunPython(create, drop)]
