"""Make audit_event append-only with database triggers (SQLite and PostgreSQL)."""

from django.db import migrations


def install(apps, schema_editor):
    from apps.audit import triggers

    triggers.install(schema_editor)


def drop(apps, schema_editor):
    from apps.audit import triggers

    triggers.drop(schema_editor)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]
    operations = [migrations.RunPython(install, drop)]
