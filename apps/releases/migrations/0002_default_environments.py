"""The two environments every installation has: staging and production."""

from django.db import migrations

DEFAULTS = [
    {
        "name": "staging",
        "production": False,
        "requires_change_reference": False,
        "description": "Pre-production: integration and acceptance tests.",
    },
    {
        "name": "production",
        "production": True,
        "requires_change_reference": True,
        "description": "Serves real decisions; releases need a change reference and production approvals.",
    },
]


def create(apps, schema_editor):
    Environment = apps.get_model("releases", "Environment")
    for values in DEFAULTS:
        Environment.objects.get_or_create(name=values["name"], defaults=values)


class Migration(migrations.Migration):
    dependencies = [("releases", "0001_initial")]

    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
