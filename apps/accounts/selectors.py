"""Reads for accounts: a principal's own tokens, sign-in lock state, operator look-ups, and the
admin lists of people, teams, service accounts and role bindings.

The admin lists need the global ``accounts.view`` permission (admins and auditors); each
fetches what its rows show in a fixed number of queries, whatever the page size.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Prefetch, Q, QuerySet

from apps.core.errors import NotFound, ValidationFailed
from apps.core.principals import Principal, PrincipalKind
from apps.rbac import services as rbac
from apps.rbac.models import RoleBinding
from apps.rbac.roles import Role

from .models import ApiToken, ServiceAccount, Team, User


def token_list(*, actor: Principal) -> QuerySet[ApiToken]:
    """The actor's own tokens (a person's, or a service account's), newest first."""
    if actor.kind == PrincipalKind.USER:
        return ApiToken.objects.filter(user_id=actor.id).order_by("-created_at", "-id")
    if actor.kind == PrincipalKind.SERVICE_ACCOUNT:
        return ApiToken.objects.filter(service_account_id=actor.id).order_by("-created_at", "-id")
    return ApiToken.objects.none()


def users_by_id(*, ids: list) -> dict[str, User]:
    """People by their id as text (the audit trail's ``actor_id``), in one query: for pages that name
    the people in rows they have already been allowed to read. Ids that are not numbers are ignored."""
    wanted = {int(i) for i in ids if str(i).isdigit()}
    if not wanted:
        return {}
    return {str(u.pk): u for u in User.objects.filter(pk__in=wanted)}


def token_owner(*, actor: Principal) -> dict:
    """Keyword arguments naming the actor as a token's owner, for ``services.token_create``."""
    if actor.kind == PrincipalKind.USER:
        return {"user": User.objects.get(pk=actor.id)}
    if actor.kind == PrincipalKind.SERVICE_ACCOUNT:
        return {"service_account": ServiceAccount.objects.get(pk=actor.id)}
    raise NotFound("Only people and service accounts own tokens.")


def user_locked_until(*, username: str) -> datetime | None:
    """When the account's sign-in lock ends, or None if it is not locked (or does not exist)."""
    user = User.objects.filter(username=username).only("locked_until").first()
    return user.locked_until if user is not None and user.is_locked() else None


def user_by_username(*, username: str) -> User:
    user = User.objects.filter(username=username).first()
    if user is None:
        raise NotFound(f"No user named {username!r}.")
    return user


def team_by_name(*, name: str) -> Team:
    team = Team.objects.filter(name=name).first()
    if team is None:
        raise NotFound(f"No team named {name!r}.")
    return team


def team_names_visible(*, actor: Principal) -> list[str]:
    """Names of the teams the actor may see (``registry.view`` on the team, or a membership), sorted:
    what a 400 for an unknown team lists, so that it never names a team the actor cannot see."""
    visible = rbac.restrict(actor, Team.objects.all(), "registry.view")
    if actor is not None and actor.kind == PrincipalKind.USER:
        visible = visible | Team.objects.filter(members__id=actor.id)
    return sorted(set(visible.values_list("name", flat=True)))


def unknown_team(*, actor: Principal, name: str, field: str = "team") -> ValidationFailed:
    """The 400 for a team name that matches no team the actor may see, listing those it may."""
    known = team_names_visible(actor=actor)
    listed = ", ".join(known) if known else "none visible to you"
    return ValidationFailed(
        f"{field}: no team named {name!r}; teams you can see: {listed}.",
        errors={field: [f"Unknown team. Use one of: {listed}."]},
        extra={"valid_values": {field: known}},
    )


def service_account_by_name(*, name: str) -> ServiceAccount:
    account = ServiceAccount.objects.select_related("owner").filter(name=name).first()
    if account is None:
        raise NotFound(f"No service account named {name!r}.")
    return account


# ---------------------------------------------------------------------------------------------
# Admin lists: everyone holding ``accounts.view`` (admins, auditors) reads them; nobody else.


def _require_view(actor: Principal) -> None:
    rbac.require(actor, "accounts.view", audit_action="accounts.denied")


def _users() -> QuerySet[User]:
    return User.objects.prefetch_related(Prefetch("teams", queryset=Team.objects.only("id", "name").order_by("name")))


def _teams() -> QuerySet[Team]:
    return Team.objects.prefetch_related(
        Prefetch(
            "members",
            queryset=User.objects.only("id", "username", "first_name", "last_name").order_by("username"),
        )
    )


def user_list(*, actor: Principal, search: str = "", team: str = "", is_active: bool | None = None) -> QuerySet[User]:
    """People by username, with their teams; ``search`` matches username, name or e-mail."""
    _require_view(actor)
    qs = _users()
    if search:
        qs = qs.filter(
            Q(username__icontains=search)
            | Q(first_name__icontains=search)
            | Q(last_name__icontains=search)
            | Q(email__icontains=search)
        )
    if team:
        qs = qs.filter(memberships__team__name=team)
    if is_active is not None:
        qs = qs.filter(is_active=is_active)
    return qs.order_by("username")


def user_get(*, actor: Principal, username: str) -> User:
    """One person with their teams; 404 when there is none of that name."""
    _require_view(actor)
    user = _users().filter(username=username).first()
    if user is None:
        raise NotFound(f"No user named {username!r}.")
    return user


def team_list(*, actor: Principal, search: str = "") -> QuerySet[Team]:
    """Teams by name, with their members."""
    _require_view(actor)
    qs = _teams()
    if search:
        qs = qs.filter(Q(name__icontains=search) | Q(display_name__icontains=search))
    return qs.order_by("name")


def team_get(*, actor: Principal, name: str) -> Team:
    """One team with its members; 404 when there is none of that name."""
    _require_view(actor)
    team = _teams().filter(name=name).first()
    if team is None:
        raise NotFound(f"No team named {name!r}.")
    return team


def service_account_list(*, actor: Principal, owner: str = "", team: str = "") -> QuerySet[ServiceAccount]:
    """Service accounts by name, with their owner and team."""
    _require_view(actor)
    qs = ServiceAccount.objects.select_related("owner", "team")
    if owner:
        qs = qs.filter(owner__username=owner)
    if team:
        qs = qs.filter(team__name=team)
    return qs.order_by("name")


def _bindings() -> QuerySet[RoleBinding]:
    return RoleBinding.objects.select_related(
        "user", "team", "service_account", "scope_team", "scope_model", "scope_environment"
    )


def role_binding_list(
    *, actor: Principal, user: str = "", team: str = "", service_account: str = "", role: str = ""
) -> QuerySet[RoleBinding]:
    """Role bindings, oldest first, with subject and scope; filtered by subject (user, team,
    service account, each by name) and role. These are direct bindings: a user's list does not
    repeat the bindings of their teams. An unknown role is a 400 naming ``role``."""
    _require_view(actor)
    qs = _bindings()
    if role:
        if role not in Role.values:
            raise ValidationFailed(
                f"role: unknown role {role!r}; choose one of: {', '.join(Role.values)}.",
                errors={"role": ["Unknown role."]},
            )
        qs = qs.filter(role=role)
    if user:
        qs = qs.filter(user__username=user)
    if team:
        qs = qs.filter(team__name=team)
    if service_account:
        qs = qs.filter(service_account__name=service_account)
    return qs.order_by("id")


def role_binding_get(*, actor: Principal, binding_id: int) -> RoleBinding:
    """One role binding; 404 when there is none with that id."""
    _require_view(actor)
    binding = _bindings().filter(pk=binding_id).first()
    if binding is None:
        raise NotFound("No such role binding.")
    return binding
