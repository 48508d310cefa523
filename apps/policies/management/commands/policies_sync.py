"""Store a new version of each shipped policy pack whose file changed (also runs after migrate)."""

from django.core.management.base import BaseCommand

from apps.policies.services import shipped_packs_sync


class Command(BaseCommand):
    help = "Sync the shipped policy packs (apps/policies/packs/*.rego) into stored pack versions."

    def handle(self, *args, **options):
        created = shipped_packs_sync()
        for version in created:
            self.stdout.write(f"{version.pack.name} v{version.number} {version.sha256[:12]}")
        self.stdout.write(self.style.SUCCESS(f"{len(created)} new shipped pack version(s)."))
