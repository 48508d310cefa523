"""Remove the leftovers of interrupted uploads (see ``apps.registry.cleanup``).

    python manage.py cleanup_uploads [--grace SECONDS]

Safe while web processes run: only files whose writer is gone, or untouched for the grace period
(``ASSAY_UPLOAD_CLEANUP_GRACE_SECONDS``), are removed. ``scripts/run`` calls it at start.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from apps.registry.cleanup import uploads_cleanup


class Command(BaseCommand):
    help = "Remove spooled uploads and half-written artifacts left by killed web processes."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--grace", type=float, default=None, help="seconds untouched before a file counts as abandoned"
        )

    def handle(self, *args, grace: float | None = None, **options) -> None:
        report = uploads_cleanup(grace_seconds=grace)
        mib = report.freed_bytes / (1024 * 1024)
        self.stdout.write(
            f"interrupted uploads: removed {len(report.removed)} file(s), {mib:.1f} MiB; "
            f"kept {report.kept} still being written"
        )
