"""``manage.py audit_verify [--json] [--workers N]``: is the audit trail intact?

Seals pending events first (an operator's command may write; the API's and the
dashboard's verification, a read, does not), walks the whole chain recomputing every hash, and compares
it with the signed checkpoints in the checkpoint store. Exit status 0 when the
trail is intact; 1 otherwise, naming the first bad sequence number and why.
A long chain is cut into ranges walked at once by worker processes (one per CPU
by default); the result is the same as one walk's.
"""

from __future__ import annotations

import json

from django.core.management.base import CommandError

from apps.audit.chain import seal_pending
from apps.audit.verification import PARALLEL_MIN_EVENTS, default_workers, verify_database

from ._base import AuditCommand


class Command(AuditCommand):
    help = (
        "Verify the audit trail: recompute the hash chain and compare it with the signed checkpoints. "
        "Exit status 0 when intact, 1 otherwise (naming the first bad sequence number)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the result as one JSON object.")
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            help="Processes walking ranges of the chain at once (default: one per CPU; 1 walks in this process).",
        )
        parser.add_argument(
            "--min-events-per-worker",
            type=int,
            default=PARALLEL_MIN_EVENTS,
            help=f"Fewest events worth a worker process (default {PARALLEL_MIN_EVENTS}).",
        )

    def handle(self, *args, **options):
        workers = options["workers"] if options["workers"] is not None else default_workers()
        if workers < 1:
            raise CommandError("--workers must be at least 1")
        seal_pending(blocking=True)
        result = verify_database(workers=workers, min_events_per_worker=options["min_events_per_worker"])
        if options["json"]:
            self.stdout.write(json.dumps(result.as_dict(), indent=2))
        else:
            self.stdout.write(f"events:       {result.events} (head #{result.head_seq} {result.head_hash})")
            latest = f", the latest covers #{result.last_checkpoint_seq}" if result.last_checkpoint_seq else ""
            self.stdout.write(
                f"checkpoints:  {result.checkpoints_checked} matched of {result.checkpoints_found} found{latest}"
            )
            if result.unsealed:
                self.stdout.write(f"unsealed:     {result.unsealed} (committed while verifying; sealed next)")
            for problem in result.problems:
                self.stdout.write(self.style.ERROR(f"problem:      #{problem.seq} {problem.kind}: {problem.message}"))
            for warning in result.warnings:
                self.stdout.write(self.style.WARNING(f"warning:      {warning}"))
        if not result.ok:
            raise CommandError(result.summary(), returncode=1)
        if not options["json"]:
            self.stdout.write(self.style.SUCCESS(result.summary()))
