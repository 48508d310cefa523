from django.db import migrations, models
from django.db.models import Max


def backfill(apps, schema_editor):
    """Start each model's counter at its highest version number."""
    RegisteredModel = apps.get_model("registry", "RegisteredModel")
    for model_id, highest in (
        RegisteredModel.objects.using(schema_editor.connection.alias)
        .annotate(highest=Max("versions__number"))
        .filter(highest__isnull=False)
        .values_list("id", "highest")
    ):
        RegisteredModel.objects.using(schema_editor.connection.alias).filter(pk=model_id).update(
            last_version_number=highest
        )


class Migration(migrations.Migration):
    dependencies = [("registry", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="registeredmodel",
            name="last_version_number",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
