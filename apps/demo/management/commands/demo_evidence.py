"""Ask for the demo's evidence once the worker has verified what it needs.

    python manage.py demo_evidence [--wait 120]

The run command starts it in the background after the worker: every ready demo version with
an evaluation dataset gets a bias report (a loaded model is scored on the dataset's feature
columns; a predictions-only version uses its prediction column), requested by the version's
author, as a person would from the version's page. Waits up to ``--wait`` seconds for the
versions to be verified. Idempotent: an equal report already asked for is reused, not asked
for again.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from apps.accounts.principals import principal_for_service_account, principal_for_user
from apps.audit import context
from apps.evidence import services as evidence
from apps.registry.choices import VersionStatus
from apps.registry.models import ModelVersion

from .demo_load import MODELS


def _candidates() -> list[ModelVersion]:
    """The demo's versions with an evaluation dataset: their model is scored on it, or its predictions read."""
    names = [spec["name"] for spec in MODELS]
    return list(
        ModelVersion.objects.filter(model__name__in=names, evaluation_dataset__isnull=False)
        .select_related("model", "evaluation_dataset", "created_by", "created_by_service_account")
        .order_by("model__name", "number")
    )


class Command(BaseCommand):
    help = "Request the demo's bias reports once its versions are verified (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--wait", type=float, default=120, help="seconds to wait for verification (default 120)")

    def handle(self, *args, **options):
        context.update(source="cli")
        deadline = time.monotonic() + options["wait"]
        while True:
            versions = _candidates()
            pending = [v for v in versions if v.status == VersionStatus.PENDING_VERIFICATION]
            if not pending or time.monotonic() >= deadline:
                break
            time.sleep(1)
        asked = 0
        for version in versions:
            if version.status != VersionStatus.READY:
                self.stderr.write(f"{version}: {version.get_status_display().lower()}, no bias report asked for")
                continue
            author = (
                principal_for_service_account(version.created_by_service_account)
                if version.created_by_service_account_id
                else principal_for_user(version.created_by)
            )
            requested = evidence.evidence_request(actor=author, kind="bias", version=version)
            asked += not requested.reused
            self.stdout.write(f"{version}: bias report {'already there' if requested.reused else 'asked for'}")
        self.stdout.write(self.style.SUCCESS(f"demo evidence: {asked} report(s) asked for"))
