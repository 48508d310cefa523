"""The only place that decides who may do what.

``require`` checks a write (or any single action) and raises ``Denied``:
rendered as 403 when the actor may see the target, as 404 when it may not.
``restrict`` filters a queryset to what the actor may see, so a list shows
only what is in scope and an object outside it is a 404. ``grant`` and
``revoke`` are the only writers of role bindings.

A principal's permissions on an object are the union of its bindings whose
scope covers the object (global, the object's owning team, the object's
model, or, for releases, the object's environment), intersected with its
token's scopes when it authenticated by token. An object's ``rbac_scope()``
returns (team id, model id) or (team id, model id, environment id).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import connections, router, transaction
from django.db.models import Model, Q, QuerySet

from apps.audit import services as audit
from apps.core import request_cache
from apps.core.errors import Conflict, Denied, NotFound, ValidationFailed
from apps.core.models import first_or_none
from apps.core.principals import Principal, PrincipalKind

from .models import RoleBinding, ScopeType, SubjectType
from .roles import GLOBAL_ONLY, NEVER_APPROVES, PERMISSIONS, ROLE_PERMISSIONS, Role, view_permission


@dataclass(frozen=True)
class Grant:
    role: str
    scope_type: str
    team_id: int | None
    model_id: int | None
    environment_id: int | None = None

    def covers(self, team_id: int | None, model_id: int | None, environment_id: int | None = None) -> bool:
        if self.scope_type == ScopeType.GLOBAL:
            return True
        if self.scope_type == ScopeType.TEAM:
            return team_id is not None and self.team_id == team_id
        if self.scope_type == ScopeType.ENVIRONMENT:
            # Only objects that live in an environment (releases) carry one: a staging-only
            # release manager acts on staging releases, never on the model or other environments.
            return environment_id is not None and self.environment_id == environment_id
        return model_id is not None and self.model_id == model_id


# Columns of a grant row, as read by ``_grant_sql`` and ``token_grants_join``.
GRANT_COLUMNS = 5


# Grants are read once per request or job and kept in that unit of work's own memory
# (``apps.core.request_cache``), which ends with it: never under a key the client chooses.
_CACHE = "rbac.grants"


def _grant_sql() -> tuple[str, str]:
    """The grant queries, written once: compiling the ORM's OR-with-join query cost ~1 ms CPU per request.

    Same rows as ``RoleBinding.objects.filter(user | team membership)`` (users) and
    ``filter(service_account_id=...)`` (service accounts), as a UNION ALL of two branches that
    each use an index (an OR over them makes PostgreSQL scan every binding); a binding found
    twice is harmless, grants are a set.
    """
    from apps.accounts.models import TeamMembership

    rb, tm = RoleBinding._meta.db_table, TeamMembership._meta.db_table
    cols = "role, scope_type, scope_team_id, scope_model_id, scope_environment_id"
    user = (
        f"SELECT {cols} FROM {rb} WHERE subject_type = %s AND user_id = %s"
        f" UNION ALL SELECT b.role, b.scope_type, b.scope_team_id, b.scope_model_id, b.scope_environment_id"
        f" FROM {rb} b"
        f" JOIN {tm} m ON m.team_id = b.team_id WHERE b.subject_type = %s AND m.user_id = %s"
    )
    service_account = f"SELECT {cols} FROM {rb} WHERE subject_type = %s AND service_account_id = %s"
    return user, service_account


_GRANT_SQL: tuple[str, str] | None = None


def _load_grants(principal: Principal) -> tuple[Grant, ...]:
    global _GRANT_SQL
    if _GRANT_SQL is None:
        _GRANT_SQL = _grant_sql()
    if principal.kind == PrincipalKind.USER:
        sql = _GRANT_SQL[0]
        params = [SubjectType.USER.value, principal.id, SubjectType.TEAM.value, principal.id]
    elif principal.kind == PrincipalKind.SERVICE_ACCOUNT:
        sql, params = _GRANT_SQL[1], [SubjectType.SERVICE_ACCOUNT.value, principal.id]
    else:
        return ()
    with connections[router.db_for_read(RoleBinding)].cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return tuple({Grant(*row) for row in rows})


def token_grants_join(connection, *, user_column: str, service_account_column: str) -> tuple[str, str]:
    """(columns, LEFT JOIN clause) that add to a token's SELECT one row per role binding of the
    token's subject, so that authentication reads the token and its grants in one query.

    The same bindings as ``_grant_sql``: a user's own and their teams', or a service account's
    own (``tests/rbac/test_token_grants.py`` holds the two to each other). On PostgreSQL a
    LATERAL union of index lookups; SQLite, which has no LATERAL, gets one join condition (an
    embedded setup holds few bindings). The two columns are the token's, qualified and quoted.
    Hand the rows' last ``GRANT_COLUMNS`` columns to ``remember_grants``.
    """
    from apps.accounts.models import TeamMembership

    quote = connection.ops.quote_name
    rb, tm = quote(RoleBinding._meta.db_table), quote(TeamMembership._meta.db_table)
    user, team, account = SubjectType.USER.value, SubjectType.TEAM.value, SubjectType.SERVICE_ACCOUNT.value
    columns = "rb.role, rb.scope_type, rb.scope_team_id, rb.scope_model_id, rb.scope_environment_id"
    if connection.vendor == "postgresql":
        cols = "b.role, b.scope_type, b.scope_team_id, b.scope_model_id, b.scope_environment_id"
        join = (
            f" LEFT JOIN LATERAL ("
            f"SELECT {cols} FROM {rb} b WHERE b.subject_type = '{user}' AND b.user_id = {user_column}"
            f" UNION ALL SELECT {cols} FROM {rb} b JOIN {tm} m ON m.team_id = b.team_id"
            f" WHERE b.subject_type = '{team}' AND m.user_id = {user_column}"
            f" UNION ALL SELECT {cols} FROM {rb} b"
            f" WHERE b.subject_type = '{account}' AND b.service_account_id = {service_account_column}"
            f") rb ON TRUE"
        )
    else:
        join = (
            f" LEFT JOIN {rb} rb ON ({user_column} IS NOT NULL AND ("
            f"(rb.subject_type = '{user}' AND rb.user_id = {user_column})"
            f" OR (rb.subject_type = '{team}' AND rb.team_id IN"
            f" (SELECT tm.team_id FROM {tm} tm WHERE tm.user_id = {user_column}))))"
            f" OR ({service_account_column} IS NOT NULL"
            f" AND rb.subject_type = '{account}' AND rb.service_account_id = {service_account_column})"
        )
    return columns, join


def remember_grants(principal: Principal, rows) -> None:
    """Keep for this request the grants read together with the principal's token
    (``token_grants_join``), so ``grants_for`` needs no query of its own."""
    cached = request_cache.bucket(_CACHE)
    if cached is not None:
        cached[principal.key] = tuple({Grant(*row) for row in rows if row[0] is not None})


def grants_for(principal: Principal | None) -> tuple[Grant, ...]:
    """The principal's grants, read once per request or job (outside one, read on every call)."""
    if principal is None or not principal.is_authenticated:
        return ()
    cached = request_cache.bucket(_CACHE)
    if cached is None:
        return _load_grants(principal)
    key = principal.key
    if key not in cached:
        cached[key] = _load_grants(principal)
    return cached[key]


def forget_cached_grants() -> None:
    """Read grants afresh after a change to bindings or memberships within the same request."""
    request_cache.forget(_CACHE)


def _token_allows(principal: Principal, permission: str) -> bool:
    if permission not in PERMISSIONS:
        raise KeyError(f"unknown permission {permission!r}")
    return principal.token_scopes is None or PERMISSIONS[permission] in principal.token_scopes


def _role_granting(principal: Principal | None, permission: str) -> list[Grant]:
    """The principal's grants of ``permission`` through its roles, whatever its token's scopes."""
    if principal is None:
        return []
    grants = [g for g in grants_for(principal) if permission in ROLE_PERMISSIONS[g.role]]
    if permission in GLOBAL_ONLY:
        grants = [g for g in grants if g.scope_type == ScopeType.GLOBAL]
    return grants


def _granting(principal: Principal | None, permission: str) -> list[Grant]:
    if principal is None or not _token_allows(principal, permission):
        return []
    return _role_granting(principal, permission)


def _covering(grants: list[Grant], obj: Any) -> list[Grant]:
    if obj is None:
        return [g for g in grants if g.scope_type == ScopeType.GLOBAL]
    team_id, model_id, environment_id = scope_of(obj)
    return [g for g in grants if g.covers(team_id, model_id, environment_id)]


def scope_of(obj: Any) -> tuple[int | None, int | None, int | None]:
    """(team id, model id, environment id) that an object's access is decided by."""
    if obj is None:
        return (None, None, None)
    scope = tuple(obj.rbac_scope())
    return scope + (None,) * (3 - len(scope))


def allows(principal: Principal | None, permission: str, obj: Any = None) -> bool:
    """May ``principal`` perform ``permission`` on ``obj`` (or, without an object, anywhere it has it globally)."""
    return bool(_covering(_granting(principal, permission), obj))


def has_global(principal: Principal | None, permission: str) -> bool:
    return allows(principal, permission, None)


def has_anywhere(principal: Principal | None, permission: str) -> bool:
    """True when some binding grants ``permission`` at any scope (used to show or hide buttons)."""
    return bool(_granting(principal, permission))


def teams_with(principal: Principal | None, permission: str) -> set[int] | None:
    """Team ids on which ``permission`` is granted; None means every team (a global grant)."""
    grants = _granting(principal, permission)
    if any(g.scope_type == ScopeType.GLOBAL for g in grants):
        return None
    return {g.team_id for g in grants if g.scope_type == ScopeType.TEAM}


TOKEN_SCOPE_MISSING = "token_scope_missing"  # noqa: S105 - a problem code, not a secret
PERMISSION_DENIED = "permission_denied"


@dataclass(frozen=True)
class Refusal:
    """Why a principal may not perform a permission on an object, for a 403 and for previews.

    ``code`` says which of the two is missing: ``token_scope_missing`` when the account's roles
    grant the permission there but the API token used lacks the scope it needs;
    ``permission_denied`` when no role of the account grants it there (whatever the token).
    """

    code: str
    detail: str
    permission: str
    token_scope: str  # the scope a token needs for the permission
    token_has_scope: bool
    role_allows: bool
    roles: tuple[str, ...]  # the account's roles that grant it there (empty when none)
    granted_by: tuple[str, ...]  # every role that grants the permission

    def as_problem(self) -> dict:
        """The members a problem document carries beside ``code`` and ``detail``."""
        return {
            "permission": self.permission,
            "token_scope": self.token_scope,
            "token_has_scope": self.token_has_scope,
            "role_allows": self.role_allows,
            "granted_by_roles": list(self.granted_by),
        }


# How a refusal names the object it is about; the label is the object's own (``audit_ref``).
_KIND_WORDS = {"model_version": "", "facts_change": "the facts change of model"}


def describe(obj: Any) -> str:
    """``on model churn``, ``on team credit``, ``on churn v1 to production``; ``globally`` without an object."""
    if obj is None:
        return "globally"
    if hasattr(obj, "audit_ref"):
        kind, _, label = obj.audit_ref()
        word = _KIND_WORDS.get(kind, kind.replace("_", " "))
        return f"on {word} {label}".replace("  ", " ")
    return f"on {obj}"


def roles_granting(permission: str) -> tuple[str, ...]:
    """Every role that grants ``permission``, in the roles' order (``contributor``, ..., ``admin``)."""
    return tuple(r for r in Role.values if permission in ROLE_PERMISSIONS[r])


def refusal(principal: Principal | None, permission: str, obj: Any = None) -> Refusal | None:
    """Why ``principal`` may not perform ``permission`` on ``obj``; None when it may (``allows``).

    The one wording of a refusal: ``require`` raises it, the gate's preview shows it.
    """
    if allows(principal, permission, obj):
        return None
    scope = str(PERMISSIONS[permission])
    token_has_scope = principal is None or _token_allows(principal, permission)
    roles = tuple(sorted({g.role for g in _covering(_role_granting(principal, permission), obj)}))
    granted_by = roles_granting(permission)
    where = describe(obj)
    if roles and not token_has_scope:
        detail = (
            f"Your API token is missing the '{scope}' scope, which '{permission}' needs. Your account's role "
            f"({', '.join(r.replace('_', ' ') for r in roles)}) would allow it {where}: use a token with the "
            f"'{scope}' scope."
        )
        return Refusal(TOKEN_SCOPE_MISSING, detail, permission, scope, False, True, roles, granted_by)
    only = " through a global binding" if permission in GLOBAL_ONLY else ""
    detail = (
        f"Your account lacks the '{permission}' permission {where}: no role of yours grants it there "
        f"(it comes with the role {' or '.join(r.replace('_', ' ') for r in granted_by)}{only})."
    )
    if not token_has_scope:
        detail += f" Your API token also lacks the '{scope}' scope it needs."
    return Refusal(PERMISSION_DENIED, detail, permission, scope, token_has_scope, False, (), granted_by)


def require(
    principal: Principal | None,
    permission: str,
    obj: Any = None,
    *,
    audit_action: str = "",
    target: Any = None,
) -> None:
    """Raise ``Denied`` unless the principal may perform ``permission`` on ``obj``.

    The denial is rendered as 404 when the principal may not even see ``obj``; else as a 403
    whose ``code`` says what is missing (``refusal``): the token's scope (``token_scope_missing``)
    or the account's role (``permission_denied``). The error handlers audit it
    (``audit_action`` names the event the change would have written).
    """
    refused = refusal(principal, permission, obj)
    if refused is None:
        return
    visible = obj is None or allows(principal, view_permission(permission), obj)
    raise Denied(
        refused.detail,
        action=permission,
        audit_action=audit_action or f"{permission.split('.')[0]}.denied",
        target=target if target is not None else obj,
        visible=visible,
        code=refused.code,
        extra=refused.as_problem(),
    )


def restrict(principal: Principal | None, queryset: QuerySet, permission: str) -> QuerySet:
    """Filter ``queryset`` to the objects on which the principal holds ``permission``.

    The model declares how it maps to a scope with ``RBAC_PATHS = {"team": ..., "model": ...}``
    and, for objects that live in an environment, ``"environment": ...``.
    """
    grants = _granting(principal, permission)
    if any(g.scope_type == ScopeType.GLOBAL for g in grants):
        return queryset
    paths = queryset.model.RBAC_PATHS
    condition = Q(pk__in=[])
    teams = {g.team_id for g in grants if g.scope_type == ScopeType.TEAM}
    models = {g.model_id for g in grants if g.scope_type == ScopeType.MODEL}
    if teams and paths.get("team"):
        condition |= Q(**{f"{paths['team']}__in": teams})
    if models and paths.get("model"):
        condition |= Q(**{f"{paths['model']}__in": models})
    environments = {g.environment_id for g in grants if g.scope_type == ScopeType.ENVIRONMENT}
    if environments and paths.get("environment"):
        condition |= Q(**{f"{paths['environment']}__in": environments})
    return queryset.filter(condition)


# What a page or a response shows in place of the name of an object outside the reader's scope:
# the row stays (so counts stay honest), its name and identifiers do not.
HIDDEN_MODEL = "a model you cannot see"
HIDDEN_VERSION = "a version you cannot see"
HIDDEN_DATASET = "a dataset you cannot see"
HIDDEN_TEAM = "a team you cannot see"


def visible_pks(principal: Principal | None, model: type[Model], pks: Any, permission: str) -> set:
    """Which of ``pks`` (rows of ``model``) the principal holds ``permission`` on: ``restrict`` over those rows.

    For pages that show related objects by name (lineage, bindings, decisions): a name whose pk
    is not returned is shown as hidden. None values are ignored; no query without pks, without
    any grant of ``permission`` or with a global one.
    """
    wanted = {pk for pk in pks if pk is not None}
    if not wanted:
        return set()
    grants = _granting(principal, permission)
    if not grants:
        return set()
    if any(g.scope_type == ScopeType.GLOBAL for g in grants):
        return wanted  # everything is in scope: no query
    return set(restrict(principal, model.objects.filter(pk__in=wanted), permission).values_list("pk", flat=True))


def get_visible(principal: Principal | None, queryset: QuerySet, permission: str, **lookup: Any) -> Model:
    """Fetch one object the principal may see; 404 (audited as denied) when it exists out of scope."""
    obj = first_or_none(restrict(principal, queryset, permission).filter(**lookup))
    if obj is not None:
        return obj
    hidden = first_or_none(queryset.filter(**lookup))
    if hidden is None:
        raise NotFound(f"No {queryset.model._meta.verbose_name} matches the given query.")
    raise Denied(action=permission, audit_action=f"{permission.split('.')[0]}.denied", target=hidden, visible=False)


def visible(principal: Principal | None, obj: Model, permission: str) -> Model:
    """``obj`` when the principal holds ``permission`` on it: ``get_visible`` for a row already read (by a
    prepared statement on a hot path). Out of scope, the same 404, audited as denied."""
    if allows(principal, permission, obj):
        return obj
    raise Denied(action=permission, audit_action=f"{permission.split('.')[0]}.denied", target=obj, visible=False)


def can_approve(principal: Principal | None, obj: Any, permission: str = "releases.approve") -> bool:
    """Approval needs the permission (a release's, or another approving one such as
    ``registry.approve_facts``), and no auditor binding anywhere: an auditor never approves."""
    if any(g.role in NEVER_APPROVES for g in grants_for(principal)):
        return False
    return allows(principal, permission, obj)


def roles_with(principal: Principal | None, permission: str, obj: Any) -> set[str]:
    """The roles through which ``principal`` holds ``permission`` on ``obj`` (what an approval slot is filled by)."""
    team_id, model_id, environment_id = scope_of(obj)
    return {g.role for g in _granting(principal, permission) if g.covers(team_id, model_id, environment_id)}


# ---------------------------------------------------------------------------------------------
# Writes: only admins (and operator commands, acting as the system) grant and revoke roles.


def _subject_kwargs(subject: Any) -> dict:
    from apps.accounts.models import ServiceAccount, Team, User

    if isinstance(subject, User):
        return {"subject_type": SubjectType.USER, "user": subject}
    if isinstance(subject, Team):
        return {"subject_type": SubjectType.TEAM, "team": subject}
    if isinstance(subject, ServiceAccount):
        return {"subject_type": SubjectType.SERVICE_ACCOUNT, "service_account": subject}
    raise ValidationFailed("A role is granted to a user, a team or a service account.")


@transaction.atomic
def role_grant(
    *,
    actor: Principal,
    subject: Any,
    role: str,
    team: Any = None,
    model: Any = None,
    environment: Any = None,
    exists_ok: bool = True,
) -> RoleBinding:
    """Bind ``role`` to ``subject`` globally, on a team, on one model, or on one environment
    (``releases.Environment``: its releases only). Audited.

    Idempotent; with ``exists_ok=False`` an existing identical binding is a ``Conflict`` instead.
    """
    if actor.kind != PrincipalKind.SYSTEM:
        require(actor, "accounts.manage", audit_action="role_binding.created")
    if role not in Role.values:
        raise ValidationFailed(f"Unknown role {role!r}; choose one of: {', '.join(Role.values)}.")
    if sum(x is not None for x in (team, model, environment)) > 1:
        raise ValidationFailed("A binding is scoped to one team, model or environment, not both.")
    scope = {"scope_type": ScopeType.GLOBAL, "scope_team": None, "scope_model": None, "scope_environment": None}
    if team is not None:
        scope.update(scope_type=ScopeType.TEAM, scope_team=team)
    if model is not None:
        scope.update(scope_type=ScopeType.MODEL, scope_model=model)
    if environment is not None:
        scope.update(scope_type=ScopeType.ENVIRONMENT, scope_environment=environment)
    binding, created = RoleBinding.objects.get_or_create(
        **_subject_kwargs(subject), role=role, **scope, defaults={"granted_by": actor.name}
    )
    if not created and not exists_ok:
        raise Conflict(
            f"This binding exists already: {binding} (id {binding.pk}).", extra={"existing_binding": binding.pk}
        )
    if created:
        audit.record(
            action="role_binding.created",
            actor=actor,
            target=binding,
            related=subject,
            after={"subject": binding.subject_label, "role": role, "scope": binding.scope_label},
        )
    forget_cached_grants()
    return binding


@transaction.atomic
def role_revoke(*, actor: Principal, binding_id: int, permission: str = "accounts.manage") -> RoleBinding:
    """Remove a role binding and return it (as it was). Audited. Removing the last admin's is
    refused (``LastAdmin``). ``permission``: ``accounts.review`` when an access review revokes it."""
    if actor.kind != PrincipalKind.SYSTEM:
        require(actor, permission, audit_action="role_binding.deleted")
    binding = RoleBinding.objects.select_for_update().filter(pk=binding_id).first()
    if binding is None:
        raise NotFound("No such role binding.")
    if binding.role == Role.ADMIN and binding.scope_type == ScopeType.GLOBAL:
        keep_an_admin(without_binding_id=binding.pk)
    before = {"subject": binding.subject_label, "role": binding.role, "scope": binding.scope_label}
    audit.record(action="role_binding.deleted", actor=actor, target=binding, before=before)
    binding.delete()
    forget_cached_grants()
    return binding


class LastAdmin(Conflict):
    """The change would leave no active person holding a global admin role (409)."""

    code = "last_admin"
    title = "Would remove the last admin"


def keep_an_admin(
    *, without_binding_id: int | None = None, without_user_id: int | None = None, without_membership=None
) -> None:
    """Refuse (``LastAdmin``) a change after which no active person would hold a global admin
    binding, their own or a team's: nobody could then manage access from the dashboard or API.

    Call it inside the change's transaction, with what the change takes away: a binding, a
    person (deactivated) or a ``(team_id, user_id)`` membership.
    """
    from apps.accounts.models import TeamMembership, User

    bindings = RoleBinding.objects.filter(role=Role.ADMIN, scope_type=ScopeType.GLOBAL)
    if without_binding_id is not None:
        bindings = bindings.exclude(pk=without_binding_id)
    members = TeamMembership.objects.filter(
        team_id__in=bindings.filter(subject_type=SubjectType.TEAM).values("team_id")
    )
    if without_membership is not None:
        team_id, user_id = without_membership
        members = members.exclude(team_id=team_id, user_id=user_id)
    people = User.objects.filter(is_active=True).filter(
        Q(pk__in=bindings.filter(subject_type=SubjectType.USER).values("user_id")) | Q(pk__in=members.values("user_id"))
    )
    if without_user_id is not None:
        people = people.exclude(pk=without_user_id)
    if not people.exists():
        raise LastAdmin(
            "This would leave no active person with the global admin role, and nobody could manage access. "
            "Grant the role to someone else first."
        )
