"""The stored gate decisions; the existing versions' decisions are made by queued jobs.

The migration queues one ``gate_decisions.stale`` reaction per 500 versions (the job table is the
queue; a worker makes them); until a version's job ran its gate answers ``evaluating``.
``manage.py gate_decisions_refresh`` makes the missing ones at once instead.
"""

import uuid

import django.db.models.deletion
from django.db import migrations, models

BATCH = 500


def queue_existing(apps, schema_editor):
    ModelVersion = apps.get_model("registry", "ModelVersion")
    Job = apps.get_model("jobs", "Job")
    ids = list(ModelVersion.objects.exclude(status="retired").order_by("pk").values_list("pk", flat=True))
    Job.objects.bulk_create(
        Job(
            kind="event:gate_decisions.stale",
            params={
                "event": "gate_decisions.stale",
                "event_id": str(uuid.uuid4()),
                "subscriber": "releases",
                "payload": {"version_ids": ids[i : i + BATCH], "environment_ids": None, "reason": "installed"},
            },
        )
        for i in range(0, len(ids), BATCH)
    )


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0003_worker_heartbeat"),
        ("registry", "0006_dataset_created_index"),
        ("releases", "0004_environment_moved_out"),
    ]

    operations = [
        migrations.CreateModel(
            name="GateDecision",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("decision", models.JSONField(default=dict)),
                ("binding_digest", models.CharField(max_length=64)),
                ("evaluated_at", models.DateTimeField()),
                (
                    "environment",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="gate_decisions",
                        to="rbac.environment",
                    ),
                ),
                (
                    "version",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="gate_decisions",
                        to="registry.modelversion",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("version", "environment"), name="one_gate_decision_per_version_environment"
                    )
                ],
            },
        ),
        migrations.RunPython(queue_existing, migrations.RunPython.noop),
    ]
