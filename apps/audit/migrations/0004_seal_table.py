"""Seals move out of the events table: ``audit_seal`` (insert-only) and the work list ``audit_pending``.

The events' chain columns (``seq``, ``prev_hash``, ``hash``, ``sealed_at``) are copied
into ``audit_seal`` row for row, events not yet sealed go on the work list, and the
columns are dropped, so that no reader can mistake an empty column for the chain and
no writer can fill one. The events table's trigger then refuses every UPDATE.
"""

import importlib

from django.db import migrations, models


def _drop_old_triggers(apps, schema_editor):
    from apps.audit import triggers

    triggers.drop_old(schema_editor)


def _carry_seals(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audit_seal (seq, event_pk, prev_hash, hash, sealed_at) "
            "SELECT seq, id, prev_hash, hash, COALESCE(sealed_at, occurred_at) FROM audit_event "
            "WHERE seq IS NOT NULL ORDER BY seq"
        )
        cursor.execute("INSERT INTO audit_pending (event_pk) SELECT id FROM audit_event WHERE seq IS NULL ORDER BY id")


def _carry_back(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for column in ("seq", "prev_hash", "hash", "sealed_at"):
            cursor.execute(
                f"UPDATE audit_event SET {column} = (SELECT {column} FROM audit_seal WHERE event_pk = audit_event.id) "
                "WHERE id IN (SELECT event_pk FROM audit_seal)"
            )


def _install_triggers(apps, schema_editor):
    from apps.audit import triggers

    triggers.install(schema_editor)


def _drop_triggers(apps, schema_editor):
    from apps.audit import triggers

    triggers.drop(schema_editor)


def _install_old_triggers(apps, schema_editor):
    old = importlib.import_module("apps.audit.migrations.0002_append_only_triggers")
    old.install(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_unsealed_index")]

    operations = [
        migrations.RunPython(_drop_old_triggers, _install_old_triggers),
        migrations.CreateModel(
            name="AuditSeal",
            fields=[
                ("seq", models.BigIntegerField(primary_key=True, serialize=False)),
                ("prev_hash", models.CharField(max_length=64)),
                ("hash", models.CharField(max_length=64)),
                ("sealed_at", models.DateTimeField()),
                (
                    "event",
                    models.OneToOneField(
                        db_column="event_pk",
                        db_constraint=False,
                        editable=False,
                        on_delete=models.deletion.DO_NOTHING,
                        related_name="seal",
                        to="audit.auditevent",
                    ),
                ),
            ],
            options={"db_table": "audit_seal"},
        ),
        migrations.CreateModel(
            name="AuditPending",
            fields=[
                (
                    "event",
                    models.OneToOneField(
                        db_column="event_pk",
                        db_constraint=False,
                        on_delete=models.deletion.DO_NOTHING,
                        primary_key=True,
                        related_name="pending",
                        serialize=False,
                        to="audit.auditevent",
                    ),
                ),
            ],
            options={"db_table": "audit_pending"},
        ),
        migrations.RunPython(_carry_seals, _carry_back),
        migrations.RemoveIndex(model_name="auditevent", name="audit_unsealed_idx"),
        migrations.RemoveField(model_name="auditevent", name="seq"),
        migrations.RemoveField(model_name="auditevent", name="prev_hash"),
        migrations.RemoveField(model_name="auditevent", name="hash"),
        migrations.RemoveField(model_name="auditevent", name="sealed_at"),
        migrations.AlterModelOptions(
            name="auditevent", options={"default_manager_name": "objects", "ordering": ["-id"]}
        ),
        migrations.RunPython(_install_triggers, _drop_triggers),
    ]
