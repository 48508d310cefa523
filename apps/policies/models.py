"""Policy packs (Rego modules, shipped or uploaded), their immutable versions, and their bindings."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from apps.accounts.models import ServiceAccount, Team, User
from apps.core.models import TimestampedModel


class PolicyPack(TimestampedModel):
    """A named set of rules in one Rego package (``assay.<name with - as _>``).

    Shipped packs come from ``apps/policies/packs/<name>.rego`` and are synced as new versions
    when the file changes; custom packs are uploaded. The pack row holds no source: every
    source is a ``PolicyPackVersion``, never edited in place.
    """

    name = models.SlugField(max_length=64, unique=True)
    title = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    shipped = models.BooleanField(default=False)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-shipped", "name"]

    def __str__(self) -> str:
        return self.name

    def audit_ref(self) -> tuple[str, str, str]:
        return ("policy_pack", str(self.pk), self.name)

    @property
    def package(self) -> str:
        return package_for(self.name)


def package_for(name: str) -> str:
    """The Rego package a pack named ``name`` must declare."""
    return "assay." + name.replace("-", "_")


class PolicyPackVersion(TimestampedModel):
    """One immutable source of a pack, numbered per pack; decisions name it by (pack, number, sha256)."""

    pack = models.ForeignKey(PolicyPack, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    source = models.TextField()
    sha256 = models.CharField(max_length=64)
    note = models.TextField(blank=True)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by_service_account = models.ForeignKey(
        ServiceAccount, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["pack_id", "-number"]
        constraints = [models.UniqueConstraint(fields=["pack", "number"], name="policy_pack_version_unique_number")]

    def __str__(self) -> str:
        return f"{self.pack.name} v{self.number}"

    def audit_ref(self) -> tuple[str, str, str]:
        return ("policy_pack_version", str(self.pk), f"{self.pack.name} v{self.number}")


class PolicyBinding(TimestampedModel):
    """Applies a pack beyond its own applicability: to every model, a team's models or one model,
    in every environment or only one (``environment``, empty for all)."""

    pack = models.ForeignKey(PolicyPack, on_delete=models.PROTECT, related_name="bindings")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    model = models.ForeignKey(
        "registry.RegisteredModel", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    environment = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["pack_id", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~(Q(team__isnull=False) & Q(model__isnull=False)), name="policy_binding_one_scope"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pack.name} on {self.scope_label}"

    @property
    def scope_label(self) -> str:
        scope = f"model {self.model}" if self.model_id else f"team {self.team}" if self.team_id else "every model"
        return f"{scope} ({self.environment or 'every environment'})"

    def audit_ref(self) -> tuple[str, str, str]:
        return ("policy_binding", str(self.pk), str(self))
