"""Reads for policy packs, versions, bindings and decisions.

Packs are global (they hold no model's data): anyone holding ``policies.view`` at any scope
may read them. A decision is about a version, so it needs ``registry.view`` on it (404
otherwise) and ``policies.view`` on its model (403).
"""

from __future__ import annotations

from django.db.models import Count, Max, QuerySet

from apps.core.errors import Denied, NotFound, ValidationFailed
from apps.core.principals import Principal
from apps.rbac import services as rbac
from apps.rbac.models import Environment
from apps.registry import selectors as registry

from .decisions import PolicyDecision, policy_decide
from .models import PolicyBinding, PolicyPack, PolicyPackVersion


def _require_view(actor: Principal) -> None:
    if not rbac.has_anywhere(actor, "policies.view"):
        raise Denied(
            "You do not have the 'policies.view' permission.",
            action="policies.view",
            audit_action="policies.denied",
            visible=True,
        )


def policy_pack_list(*, actor: Principal) -> QuerySet[PolicyPack]:
    """Every pack with its version count and latest number, shipped first."""
    _require_view(actor)
    return PolicyPack.objects.annotate(version_count=Count("versions"), latest_number=Max("versions__number")).order_by(
        "-shipped", "name"
    )


def policy_pack_get(*, actor: Principal, name: str) -> PolicyPack:
    _require_view(actor)
    pack = PolicyPack.objects.filter(name=name).first()
    if pack is None:
        raise NotFound(f"No policy pack named {name!r}.")
    return pack


def policy_pack_versions(*, pack: PolicyPack) -> QuerySet[PolicyPackVersion]:
    return pack.versions.select_related("created_by", "created_by_service_account").order_by("-number")


def policy_pack_version_get(*, actor: Principal, name: str, number: int) -> PolicyPackVersion:
    pack = policy_pack_get(actor=actor, name=name)
    version = pack.versions.select_related("pack", "created_by").filter(number=number).first()
    if version is None:
        raise NotFound(f"Policy pack {name!r} has no version {number}.")
    return version


def policy_binding_list(*, actor: Principal, pack: PolicyPack) -> list[PolicyBinding]:
    """A pack's bindings, each with the names the actor may read: ``shown_team``, ``shown_model``, ``shown_scope``.

    A binding to a model or team outside the actor's scope (``registry.view``) stays in the list,
    so the count is honest, but its name reads "a model you cannot see" (``model_hidden``).
    """
    from apps.accounts.models import Team
    from apps.registry.models import RegisteredModel

    bindings = list(pack.bindings.select_related("team", "model", "created_by").order_by("id"))
    models = rbac.visible_pks(actor, RegisteredModel, [b.model_id for b in bindings], "registry.view")
    teams = rbac.visible_pks(actor, Team, [b.team_id for b in bindings], "registry.view")
    for b in bindings:
        b.model_hidden = b.model_id is not None and b.model_id not in models
        b.team_hidden = b.team_id is not None and b.team_id not in teams
        b.shown_model = (rbac.HIDDEN_MODEL if b.model_hidden else b.model.name) if b.model_id else None
        b.shown_team = (rbac.HIDDEN_TEAM if b.team_hidden else b.team.name) if b.team_id else None
        scope = f"model {b.shown_model}" if b.model_id else f"team {b.shown_team}" if b.team_id else "every model"
        if b.model_hidden or b.team_hidden:
            scope = b.shown_model or b.shown_team
        b.shown_scope = f"{scope} ({b.environment or 'every environment'})"
    return bindings


def environment_for(name: str, production: bool | None = None) -> dict:
    """The environment facts a decision reads, from the environment of that name (``apps.rbac``).

    ``production`` overrides the stored flag, for a dry-run asking "what if this were production";
    with it, the environment need not exist yet. Without it, an unknown name is a 400 naming the known ones.
    """
    name = (name or "").strip()
    if not name:
        raise ValidationFailed(
            "Name an environment (e.g. staging or production).", errors={"environment": ["Required."]}
        )
    if production is not None:
        return {"name": name, "production": bool(production)}
    environment = Environment.objects.filter(name=name).first()
    if environment is None:
        known = ", ".join(Environment.objects.order_by("name").values_list("name", flat=True)) or "none"
        message = f"No environment is named {name!r}; known: {known}."
        raise ValidationFailed(message, errors={"environment": [message]})
    return environment.as_policy_input()


def policy_decision_get(
    *,
    actor: Principal,
    model_name: str,
    number: int,
    environment: dict,
    release: dict | None = None,
    pin: PolicyPackVersion | None = None,
) -> PolicyDecision:
    """The decision for a version the actor may see (``pin``: evaluate that pack version, bound, instead)."""
    version = registry.version_get(actor=actor, model_name=model_name, number=number)
    rbac.require(actor, "policies.view", obj=version.model)
    return policy_decide(
        version=version, environment=environment, release=release, pin={pin.pack.name: pin} if pin else None
    )
