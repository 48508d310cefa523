"""Seals move out of the events table: ``audit_seal`` (insert-only) and the work list ``audit_pending``.

The events' chain columns (``seq``, ``prev_hash``, ``hash``, ``sealed_at``) are copied
into ``audit_seal`` row for row, events not yet sealed go on the work list, and the
columns are dropped, so that no reader can mistake an empty column for the chain and
no writer can fill one. The events table's trigger then refuses every UPDATE.
"""

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


def _install_triggers(apps, schema_editor):
    from apps.audit import triggers

    triggers.install(schema_editor)


def _refuse(apps, schema_editor):
    raise RuntimeError("the seal table cannot be folded back into the events table; restore a backup instead")


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_unsealed_index")]

    operations = [
        migrations.RunPython(_drop_old_triggers, _refuse),
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
        migrations.RunPython(_carry_seals, migrations.RunPython.noop),
        migrations.RemoveIndex(model_name="auditevent", name="audit_unsealed_idx"),
        migrations.RemoveField(model_name="auditevent", name="seq"),
        migrations.RemoveField(model_name="auditevent", name="prev_hash"),
        migrations.RemoveField(model_name="auditevent", name="hash"),
        migrations.RemoveField(model_name="auditevent", name="sealed_at"),
        migrations.RunPython(_install_triggers, migrations.RunPython.noop),
    ]
