"""What the registry's services share: the author of a write, team lookup, input cleaning, stored bytes."""

from __future__ import annotations

import logging
import re
from typing import Any

from django.db.models import Q

from apps.accounts.models import Team
from apps.accounts.selectors import unknown_team
from apps.core.errors import ValidationFailed
from apps.core.principals import Principal, PrincipalKind
from apps.core.storage import Stored, get_storage
from apps.rbac import services as rbac

from ..models import Dataset
from ..uploads import Spooled

logger = logging.getLogger(__name__)

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def author(actor: Principal) -> dict:
    """created_by is the accountable person (a service account's owner); plus the service account."""
    if actor.kind == PrincipalKind.SERVICE_ACCOUNT:
        return {"created_by_id": actor.owner_user_id, "created_by_service_account_id": actor.id}
    if actor.kind == PrincipalKind.USER:
        return {"created_by_id": actor.id, "created_by_service_account_id": None}
    return {"created_by_id": None, "created_by_service_account_id": None}


def resolve_team(owner_team: Team | str, *, actor: Principal | None = None) -> Team:
    """A Team given as itself or by name; 400 for an unknown name, listing the teams ``actor`` may see."""
    if isinstance(owner_team, Team):
        return owner_team
    team = Team.objects.filter(name=owner_team).first()
    if team is None:
        raise unknown_team(actor=actor, name=owner_team, field="owner_team")
    return team


def clean_sha256(value: str, field: str = "sha256") -> str:
    """An expected digest: 64 hex characters (``sha256:`` prefix allowed), lower-cased; '' when not given."""
    value = (value or "").strip().lower()
    if value.startswith("sha256:"):
        value = value[len("sha256:") :]
    if value and not _SHA256_RE.match(value):
        raise ValidationFailed(f"{field}: expected 64 hexadecimal characters.", errors={field: ["Not a SHA-256."]})
    return value


def visible_datasets(actor: Principal, ids: list[int], field: str) -> list[Dataset]:
    """The datasets with these ids, in order; 400 naming those that do not exist or the actor may not see."""
    ids = list(dict.fromkeys(int(i) for i in ids))
    if not ids:
        return []
    found = {d.pk: d for d in rbac.restrict(actor, Dataset.objects.filter(Q(pk__in=ids)), "registry.view")}
    missing = [i for i in ids if i not in found]
    if missing:
        raise ValidationFailed(
            f"{field}: no dataset with id {', '.join(map(str, missing))} (or not visible to you).",
            errors={field: [f"unknown dataset: {i}" for i in missing]},
        )
    return [found[i] for i in ids]


def save_bytes(spooled: Spooled, *, kind: str) -> Stored:
    """Move checked bytes into storage under a generated key."""
    with spooled.open() as fh:
        stored = get_storage().save(fh, kind=kind)
    if stored.sha256 != spooled.sha256 or stored.size != spooled.size:  # the spool changed under us
        get_storage().delete(stored.key)
        raise ValidationFailed("The upload changed while it was being stored; please retry.")
    return stored


def delete_quietly(key: str) -> None:
    """Remove stored bytes whose row was never written; a failure only leaves harmless orphaned bytes."""
    try:
        get_storage().delete(key)
    except Exception:
        logger.exception("could not remove stored bytes %s", key)


def ensure_json_object(value: Any, field: str) -> dict:
    value = value or {}
    if not isinstance(value, dict):
        raise ValidationFailed(f"{field}: expected an object.", errors={field: ["Not an object."]})
    return value
