"""Export the demo's release report and evidence pack, as its compliance officer would.

    python manage.py demo_reports [--wait 300]

The run command starts it after ``demo_deployments``: carol (compliance officer) asks for the
report of fraud-detector v1's production release in every format (signed PDF, HTML page,
evidence pack) and the command waits (up to ``--wait`` seconds) for the worker to generate it.
The Reports page then lists it; ``scripts/verify_pack.py`` checks the downloaded pack. She also
schedules a monthly period report on every team, and starts an access review of team credit-risk's
grants with two of them attested, the rest waiting for a reviewer (the Reports page links to it).
Idempotent: once any report exists it does nothing.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from apps.accounts.models import User
from apps.accounts.principals import principal_for_user
from apps.audit import context
from apps.releases.models import ReleaseRequest
from apps.reports import reviews, schedules, services
from apps.reports.models import Report


class Command(BaseCommand):
    help = "Export the demo's release report and evidence pack (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--wait", type=float, default=300, help="seconds to wait for the report (default 300)")

    def handle(self, *args, **options):
        context.update(source="cli")
        if Report.objects.exists():
            self.stdout.write("demo reports: already there")
            return
        release = (
            ReleaseRequest.objects.filter(model__name="fraud-detector", environment__name="production")
            .order_by("-created_at")
            .first()
        )
        if release is None:
            self.stderr.write("demo reports: the demo's production release of fraud-detector is not there")
            return
        carol = principal_for_user(User.objects.get(username="carol"))
        report = services.report_request(
            actor=carol, kind="release", release_id=release.public_id, formats=["pdf", "html", "pack"]
        )
        schedules.schedule_create(actor=carol, kind="period", cadence="monthly", formats=["pdf", "pack"])
        review = reviews.access_review_start(actor=carol, team_name="credit-risk", title="Access review, credit-risk")
        for item in list(review.items.exclude(subject_key=f"user:{carol.id}"))[:2]:
            reviews.access_review_decide(
                actor=carol, review_id=review.public_id, item_id=item.pk, decision="attest", reason="still needed"
            )
        deadline = time.monotonic() + options["wait"]
        while not report.is_finished and time.monotonic() < deadline:
            time.sleep(1)
            report.refresh_from_db()
        self.stdout.write(f"demo reports: {report.title}: {report.status} {report.error}".rstrip())
