"""Environments: where versions are released to."""

from __future__ import annotations

from django.db import transaction

from apps.audit import services as audit
from apps.core.errors import Conflict
from apps.core.principals import Principal
from apps.jobs import events
from apps.rbac import services as rbac

from ..models import Environment


@transaction.atomic
def environment_create(
    *,
    actor: Principal,
    name: str,
    production: bool = False,
    requires_change_reference: bool = False,
    description: str = "",
) -> Environment:
    """Define a new environment (admins). Audited ``environment.created``; publishes ``environment.changed``
    (every version's gate decision there is then made by jobs)."""
    rbac.require(actor, "accounts.manage", audit_action="environment.created")
    if Environment.objects.filter(name=name).exists():
        raise Conflict(f"An environment named {name!r} exists already.")
    env = Environment.objects.create(
        name=name, production=production, requires_change_reference=requires_change_reference, description=description
    )
    audit.record(
        action="environment.created",
        actor=actor,
        target=env,
        after={"name": name, "production": production, "requires_change_reference": requires_change_reference},
    )
    events.publish("environment.changed", payload={"environment_id": env.pk, "environment": name}, target=env)
    return env
