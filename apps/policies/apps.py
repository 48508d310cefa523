"""Policy packs in Rego (shipped and custom), their bindings, and the decisions they give."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_shipped_packs(sender, using="default", **kwargs) -> None:
    """After migrate (and a test flush), store a new version of each shipped pack whose file changed."""
    from django.db import connections

    from .services import shipped_packs_sync

    if "policies_policypackversion" not in connections[using].introspection.table_names():
        return
    shipped_packs_sync()


class PoliciesConfig(AppConfig):
    name = "apps.policies"
    label = "policies"

    def ready(self) -> None:
        post_migrate.connect(_sync_shipped_packs, sender=self, dispatch_uid="policies_sync_shipped_packs")
