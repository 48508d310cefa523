"""At most one live release request (pending evidence, pending approval or approved) per version and
environment (it was one open request: an approved request beside an open one made re-evaluation collide).

A database that holds two live requests for one version and environment cannot take the new index:
the migration stops before it, naming them, so an operator cancels the one not wanted (audited,
``POST /api/v1/releases/{id}/cancel/``) and migrates again. Nothing is closed without its audit event.
"""

from django.conf import settings
from django.db import migrations, models
from django.db.models import Count

LIVE = ["pending_evidence", "pending_approval", "approved"]


def refuse_duplicates(apps, schema_editor):
    ReleaseRequest = apps.get_model("releases", "ReleaseRequest")
    clashes = (
        ReleaseRequest.objects.filter(status__in=LIVE)
        .values("version_id", "environment_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    lines = []
    for clash in clashes:
        for r in ReleaseRequest.objects.filter(
            status__in=LIVE, version_id=clash["version_id"], environment_id=clash["environment_id"]
        ).order_by("created_at"):
            lines.append(
                f"  release {r.public_id} ({r.status}), version id {r.version_id}, environment id {r.environment_id}"
            )
    if lines:
        raise RuntimeError(
            "Some versions have more than one live release request for one environment; cancel the ones not "
            "wanted (POST /api/v1/releases/{id}/cancel/, audited) and migrate again:\n" + "\n".join(lines)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("registry", "0004_policy_facts"),
        ("releases", "0002_default_environments"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(refuse_duplicates, migrations.RunPython.noop),
        migrations.RemoveConstraint(
            model_name="releaserequest",
            name="one_open_release_per_version_environment",
        ),
        migrations.AddConstraint(
            model_name="releaserequest",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status__in", ["pending_evidence", "pending_approval", "approved"])),
                fields=("version", "environment"),
                name="one_live_release_per_version_environment",
            ),
        ),
    ]
