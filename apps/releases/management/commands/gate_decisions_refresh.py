"""Make the stored gate decisions now, in this process (instead of waiting for the queued jobs)."""

from django.core.management.base import BaseCommand

from apps.releases.gate_decisions import gate_decisions_refresh


class Command(BaseCommand):
    help = (
        "Judge every version's gate in every environment and store the decisions the gate answers from. "
        "By default only the missing ones; --all re-judges every one (unchanged decisions are not written)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="Re-judge the stored decisions too.")

    def handle(self, *args, **options):
        def progress(percent: int, message: str) -> None:
            self.stdout.write(f"{percent:3d}% {message}")

        written = gate_decisions_refresh(
            missing_only=not options["all"], reason="gate_decisions_refresh", progress=progress
        )
        self.stdout.write(self.style.SUCCESS(f"{written} gate decision(s) stored."))
