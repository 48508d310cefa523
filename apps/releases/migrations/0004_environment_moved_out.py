"""Environments moved to ``rbac`` (its 0003): release requests point at ``rbac.Environment``, same table.

State only: no statement runs on SQLite or PostgreSQL.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("releases", "0003_one_live_request"),
        ("rbac", "0003_environment_moved_in"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="releaserequest",
                    name="environment",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="release_requests",
                        to="rbac.environment",
                    ),
                ),
                migrations.DeleteModel(name="Environment"),
            ],
            database_operations=[],
        ),
    ]
