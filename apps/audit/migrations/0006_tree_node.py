"""The Merkle tree's stored nodes (``audit_tree_node``), its append-only triggers, and the nodes of the trail so far.

The backfill reads every seal's hash once (about a second per million events) and writes the
complete subtrees of 16 events and more; from then on the sealer adds them as it seals.
"""

from django.db import migrations, models


def _install_triggers(apps, schema_editor):
    from apps.audit import triggers

    triggers.install(schema_editor)


def _drop_tree_triggers(apps, schema_editor):
    from apps.audit import triggers

    triggers.drop_tree(schema_editor)


def _backfill(apps, schema_editor):
    from apps.audit import tree

    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT max(seq) FROM audit_seal")
        head = cursor.fetchone()[0] or 0
        tree.extend(cursor, int(head))


class Migration(migrations.Migration):
    dependencies = [("audit", "0005_related_indexes")]

    operations = [
        migrations.CreateModel(
            name="AuditTreeNode",
            fields=[
                ("pk", models.CompositePrimaryKey("level", "idx", blank=True, editable=False, serialize=False)),
                ("level", models.PositiveSmallIntegerField()),
                ("idx", models.BigIntegerField()),
                ("hash", models.CharField(max_length=64)),
            ],
            options={"db_table": "audit_tree_node"},
        ),
        migrations.RunPython(_backfill, migrations.RunPython.noop),
        migrations.RunPython(_install_triggers, _drop_tree_triggers),
    ]
