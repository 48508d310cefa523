"""``manage.py report_certificate [--if-missing]``: the key and certificate that sign report PDFs.

Prints the certificate's SHA-256 fingerprint and its path (never the private key). ``--if-missing``
creates a key (ECDSA P-256, mode 0600) and a self-signed certificate when there are none: the run
command uses it for the embedded setup. An operator may install a CA-issued pair instead
(``ASSAY_REPORT_SIGNING_KEY_FILE``, ``ASSAY_REPORT_CERTIFICATE_FILE``).
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.reports.certificate import ReportSignerMissing, certificate_fingerprint, load_report_signer


class Command(BaseCommand):
    help = "Show the report-signing certificate's fingerprint; --if-missing creates a key and certificate first."

    def add_arguments(self, parser):
        parser.add_argument("--if-missing", action="store_true", help="Create a key and certificate if none exist.")

    def handle(self, *args, **options):
        try:
            load_report_signer(create=options["if_missing"])
        except ReportSignerMissing as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"report certificate {settings.ASSAY_REPORT_CERTIFICATE_FILE}, SHA-256 {certificate_fingerprint()}"
        )
