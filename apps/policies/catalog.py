"""Which pack versions a decision evaluates: every shipped pack (each decides in Rego whether it
applies) and every custom or shipped pack bound to the model, its team or all models.

Shipped packs live in ``apps/policies/packs/<name>.rego``. ``services.shipped_packs_sync`` (run after
every migrate, and by ``manage.py policies_sync``) stores a new version whenever a file's
sha256 differs from the pack's latest version, so decisions name stored versions.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from django.db.models import Q

from .models import PolicyBinding, PolicyPack, PolicyPackVersion

PACKS_DIR = Path(__file__).resolve().parent / "packs"

# Shipped packs in the order they are shown.
SHIPPED = ("baseline", "security", "gdpr", "hipaa", "pci-dss", "sox", "eu-ai-act", "fairness")


def sha256_text(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def shipped_source(name: str) -> str:
    return (PACKS_DIR / f"{name}.rego").read_text(encoding="utf-8")


def shipped_title(source: str, name: str) -> str:
    match = re.search(r'^title\s*:=\s*"([^"]+)"', source, re.MULTILINE)
    return match.group(1) if match else name


def shipped_description(source: str) -> str:
    lines = []
    for line in source.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# ").rstrip())
    return " ".join(lines)


@dataclass(frozen=True)
class PackInForce:
    """One pack version a decision evaluates; ``bound`` when a binding applies it whatever its ``applies``."""

    name: str
    number: int | None
    sha256: str
    source: str
    shipped: bool
    bound: bool

    @property
    def package(self) -> str:
        return "assay." + self.name.replace("-", "_")


def _latest_versions(pack_ids) -> dict[int, PolicyPackVersion]:
    latest: dict[int, PolicyPackVersion] = {}
    for v in PolicyPackVersion.objects.filter(pack_id__in=pack_ids).order_by("pack_id", "-number"):
        latest.setdefault(v.pack_id, v)
    return latest


def bindings_for(*, model, environment_name: str):
    return PolicyBinding.objects.filter(
        Q(model__isnull=True, team__isnull=True) | Q(team_id=model.owner_team_id) | Q(model_id=model.pk),
        Q(environment="") | Q(environment=environment_name),
    )


def packs_in_force(
    *, model, environment_name: str, pin: dict[str, PolicyPackVersion] | None = None
) -> list[PackInForce]:
    """Every shipped pack and every bound pack, at its latest version (or the ``pin``ned one, by pack name)."""
    bound_ids = set(bindings_for(model=model, environment_name=environment_name).values_list("pack_id", flat=True))
    packs = list(PolicyPack.objects.filter(Q(shipped=True) | Q(pk__in=bound_ids)))
    latest = _latest_versions([p.pk for p in packs])
    pin = pin or {}
    chosen: list[PackInForce] = []
    by_name = {p.name: p for p in packs}
    for pack in packs:
        version = pin.get(pack.name) or latest.get(pack.pk)
        if version is None:
            continue
        chosen.append(
            PackInForce(
                name=pack.name,
                number=version.number,
                sha256=version.sha256,
                source=version.source,
                shipped=pack.shipped,
                bound=pack.pk in bound_ids,
            )
        )
    # A pinned version of a pack not otherwise in force (a dry-run of a custom pack) is evaluated as bound.
    for name, version in pin.items():
        if name not in by_name:
            chosen.append(
                PackInForce(
                    name=name,
                    number=version.number,
                    sha256=version.sha256,
                    source=version.source,
                    shipped=version.pack.shipped,
                    bound=True,
                )
            )
    # Shipped packs not yet synced (a file added since the last migrate) are read from their file.
    for name in SHIPPED:
        if name not in by_name and name not in pin:
            source = shipped_source(name)
            chosen.append(PackInForce(name, None, sha256_text(source), source, True, False))
    order = {name: i for i, name in enumerate(SHIPPED)}
    return sorted(chosen, key=lambda p: (order.get(p.name, len(order)), p.name))
