"""Environments are now rbac's model (a scope); the table ``releases_environment`` stays as it is.

State only: no statement runs, so the move is the same on SQLite and PostgreSQL and keeps every
row, id and foreign key. ``releases`` 0004 drops the model from its own state.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("rbac", "0002_environment_scope"),
        ("releases", "0003_one_live_request"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Environment",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                        ("name", models.SlugField(unique=True)),
                        ("production", models.BooleanField(default=False)),
                        ("requires_change_reference", models.BooleanField(default=False)),
                        ("description", models.TextField(blank=True)),
                    ],
                    options={"db_table": "releases_environment", "ordering": ["name"]},
                ),
                migrations.AlterField(
                    model_name="rolebinding",
                    name="scope_environment",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="rbac.environment",
                    ),
                ),
            ],
            database_operations=[],
        ),
    ]
