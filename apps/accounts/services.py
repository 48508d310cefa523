"""Writes for people, teams, service accounts, tokens and sign-in.

Every function takes an explicit ``actor``, runs in one transaction and
writes its audit event there. Operator commands act as ``Principal.system``.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import transaction
from django.utils import timezone

from apps.audit import context as audit_context
from apps.audit import services as audit
from apps.audit.choices import Outcome
from apps.core import throttling
from apps.core.errors import Conflict, Denied, DomainError, NotFound, ValidationFailed
from apps.core.principals import Principal, PrincipalKind, same_person
from apps.rbac import services as rbac
from apps.rbac.models import Environment
from apps.rbac.roles import Scope

from . import tokens
from .models import ApiToken, ServiceAccount, Team, TeamMembership, User


def _require_admin(actor: Principal, audit_action: str) -> None:
    if actor.kind != PrincipalKind.SYSTEM:
        rbac.require(actor, "accounts.manage", audit_action=audit_action)


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", errors={field: [message]})


def _user(user: User | str, *, field: str = "", lock: bool = False) -> User:
    """The user itself, or the user of that name: unknown is a 404, or a 400 naming ``field`` (an input)."""
    if isinstance(user, User) and not lock:
        return user
    username = user.username if isinstance(user, User) else user
    queryset = User.objects.select_for_update() if lock else User.objects
    found = queryset.filter(username=username).first()
    if found is None:
        if field:
            raise _invalid(field, f"No user named {username!r}.")
        raise NotFound(f"No user named {username!r}.")
    return found


def _team(team: Team | str, *, field: str = "") -> Team:
    """The team itself, or the team of that name: unknown is a 404, or a 400 naming ``field`` (an input)."""
    if isinstance(team, Team):
        return team
    found = Team.objects.filter(name=team).first()
    if found is None:
        if field:
            raise _invalid(field, f"No team named {team!r}.")
        raise NotFound(f"No team named {team!r}.")
    return found


def _check_slug(field: str, value: str) -> None:
    try:
        validate_slug(value)
    except ValidationError:
        raise _invalid(field, "Use letters, digits, '-' and '_' only.") from None


@transaction.atomic
def user_create(
    *,
    actor: Principal,
    username: str,
    password: str | None,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    check_password: bool = True,
) -> User:
    """Create a person. Audited as ``user.created`` (the password never reaches the trail)."""
    _require_admin(actor, "user.created")
    try:
        UnicodeUsernameValidator()(username)
    except ValidationError:
        raise _invalid("username", "Use letters, digits and @ . + - _ only.") from None
    if User.objects.filter(username=username).exists():
        raise Conflict(f"A user named {username!r} already exists.")
    user = User(username=username, email=email, first_name=first_name, last_name=last_name)
    if password:
        if check_password:
            try:
                validate_password(password, user)
            except ValidationError as exc:
                raise ValidationFailed(" ".join(exc.messages), errors={"password": exc.messages}) from exc
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()
    audit.record(action="user.created", actor=actor, target=user, after={"username": username, "email": email})
    return user


USER_EDITABLE = ("first_name", "last_name", "email")


@transaction.atomic
def user_update(*, actor: Principal, user: User | str, changes: dict) -> User:
    """Change a person's name and e-mail address, or deactivate (``is_active: False``) or reactivate them.

    Deactivating ends the person's access at once: every active token of theirs is revoked
    (``api_token.revoked`` each), and an inactive person's sessions, and the tokens of service
    accounts they own, no longer authenticate. Nobody can deactivate themselves. The username never
    changes. Audited ``user.updated`` (before/after), ``user.deactivated`` or ``user.reactivated``.
    """
    deactivating = changes.get("is_active") is False
    _require_admin(actor, "user.deactivated" if deactivating else "user.updated")
    user = _user(user, lock=True)
    if "username" in changes and changes["username"] != user.username:
        raise _invalid("username", "A username is permanent and cannot be changed.")
    unknown = sorted(set(changes) - {*USER_EDITABLE, "username", "is_active"})
    if unknown:
        raise ValidationFailed(f"Fields that cannot be changed: {', '.join(unknown)}.")
    if deactivating and user.is_active and same_person(actor, Principal(kind=PrincipalKind.USER, id=user.pk, name="")):
        raise _invalid("is_active", "You cannot deactivate yourself; ask another admin.")
    if deactivating and user.is_active:
        rbac.keep_an_admin(without_user_id=user.pk)
    before, after = {}, {}
    for field in USER_EDITABLE:
        value = (changes.get(field) or "").strip() if field in changes else getattr(user, field)
        if value != getattr(user, field):
            before[field], after[field] = getattr(user, field), value
            setattr(user, field, value)
    if after:
        user.save(update_fields=list(after))
        audit.record(action="user.updated", actor=actor, target=user, before=before, after=after)
    if "is_active" in changes and bool(changes["is_active"]) != user.is_active:
        _user_set_active(actor=actor, user=user, active=bool(changes["is_active"]))
    return user


def _user_set_active(*, actor: Principal, user: User, active: bool) -> None:
    user.is_active = active
    user.save(update_fields=["is_active"])
    revoked = []
    if not active:
        now = timezone.now()
        revoked = list(ApiToken.objects.select_for_update().active().filter(user=user))
        ApiToken.objects.filter(pk__in=[t.pk for t in revoked]).update(revoked_at=now)
        for token in revoked:
            token.revoked_at = now
            audit.record(
                action="api_token.revoked",
                actor=actor,
                target=token,
                related=user,
                after={"revoked_at": now},
                reason="its owner was deactivated",
            )
    audit.record(
        action="user.deactivated" if not active else "user.reactivated",
        actor=actor,
        target=user,
        before={"is_active": not active},
        after={"is_active": active, **({"revoked_api_keys": len(revoked)} if not active else {})},
    )
    rbac.forget_cached_grants()


@transaction.atomic
def team_create(*, actor: Principal, name: str, display_name: str = "", description: str = "") -> Team:
    """Create a team. Audited as ``team.created``."""
    _require_admin(actor, "team.created")
    _check_slug("name", name)
    if Team.objects.filter(name=name).exists():
        raise Conflict(f"A team named {name!r} already exists.")
    team = Team.objects.create(name=name, display_name=display_name, description=description)
    audit.record(
        action="team.created",
        actor=actor,
        target=team,
        after={"name": name, **({"display_name": display_name} if display_name else {})},
    )
    return team


@transaction.atomic
def team_member_add(*, actor: Principal, team: Team | str, user: User | str, exists_ok: bool = True) -> TeamMembership:
    """Add a user to a team. Audited as ``team.member_added``.

    Idempotent; with ``exists_ok=False`` an existing membership is a ``Conflict``. An unknown
    team is a 404; an unknown user a 400 naming ``username`` (names are resolved after the admin check).
    """
    _require_admin(actor, "team.member_added")
    team, user = _team(team), _user(user, field="username")
    membership, created = TeamMembership.objects.get_or_create(team=team, user=user)
    if not created and not exists_ok:
        raise Conflict(f"{user.username!r} is already a member of team {team.name!r}.")
    if created:
        audit.record(action="team.member_added", actor=actor, target=team, related=user, after={"user": user.username})
        rbac.forget_cached_grants()
    return membership


@transaction.atomic
def team_member_remove(*, actor: Principal, team: Team | str, user: User | str) -> None:
    """Remove a user from a team: they lose the team's role bindings at once. Audited as ``team.member_removed``.

    An unknown team or user, or a user who is not a member, is a 404.
    """
    _require_admin(actor, "team.member_removed")
    team, user = _team(team), _user(user)
    membership = TeamMembership.objects.select_for_update().filter(team=team, user=user).first()
    if membership is None:
        raise NotFound(f"{user.username!r} is not a member of team {team.name!r}.")
    rbac.keep_an_admin(without_membership=(team.pk, user.pk))
    membership.delete()
    audit.record(action="team.member_removed", actor=actor, target=team, related=user, before={"user": user.username})
    rbac.forget_cached_grants()


@transaction.atomic
def service_account_create(
    *, actor: Principal, name: str, owner: User | str, team: Team | str | None = None, description: str = ""
) -> ServiceAccount:
    """Create a CI service account owned by an active person. Audited as ``service_account.created``.

    An unknown or inactive owner, or an unknown team, is a 400 naming ``owner`` or ``team``.
    """
    _require_admin(actor, "service_account.created")
    _check_slug("name", name)
    owner = _user(owner, field="owner")
    if not owner.is_active:
        raise _invalid("owner", f"{owner.username!r} is deactivated; a service account needs an active owner.")
    team = _team(team, field="team") if team else None
    if ServiceAccount.objects.filter(name=name).exists():
        raise Conflict(f"A service account named {name!r} already exists.")
    account = ServiceAccount.objects.create(name=name, owner=owner, team=team, description=description)
    audit.record(
        action="service_account.created",
        actor=actor,
        target=account,
        related=owner,
        after={"name": name, "owner": owner.username, "team": team.name if team else None},
    )
    return account


@transaction.atomic
def role_binding_create(
    *,
    actor: Principal,
    subject_type: str,
    subject: str,
    role: str,
    scope_team: str | None = None,
    scope_model: str | None = None,
    scope_environment: str | None = None,
):
    """Grant ``role`` to a user, team or service account named ``subject``: globally, on a team, on a model
    or on an environment (its releases only).

    Names are resolved after the admin check; an unknown one is a 400 naming its field
    (``subject``, ``scope_team``, ``scope_model``). An identical binding is a ``Conflict``.
    ``apps.rbac.services.role_grant`` writes the binding and its ``role_binding.created`` event.
    """
    from apps.rbac.models import SubjectType
    from apps.rbac.roles import Role
    from apps.registry.models import RegisteredModel

    _require_admin(actor, "role_binding.created")
    if role not in Role.values:
        raise _invalid("role", f"Unknown role {role!r}; choose one of: {', '.join(Role.values)}.")
    if sum(bool(s) for s in (scope_team, scope_model, scope_environment)) > 1:
        message = "A binding is scoped to one team, model or environment, not both."
        given = {"scope_team": scope_team, "scope_model": scope_model, "scope_environment": scope_environment}
        raise ValidationFailed(message, errors={field: [message] for field, value in given.items() if value})
    if subject_type == SubjectType.USER:
        target = _user(subject, field="subject")
    elif subject_type == SubjectType.TEAM:
        target = _team(subject, field="subject")
    elif subject_type == SubjectType.SERVICE_ACCOUNT:
        target = ServiceAccount.objects.filter(name=subject).first()
        if target is None:
            raise _invalid("subject", f"No service account named {subject!r}.")
    else:
        raise _invalid("subject_type", f"Choose one of: {', '.join(SubjectType.values)}.")
    team = _team(scope_team, field="scope_team") if scope_team else None
    model = None
    if scope_model:
        model = RegisteredModel.objects.filter(name=scope_model).first()
        if model is None:
            raise _invalid("scope_model", f"No model named {scope_model!r}.")
    environment = None
    if scope_environment:
        environment = Environment.objects.filter(name=scope_environment).first()
        if environment is None:
            raise _invalid("scope_environment", f"No environment named {scope_environment!r}.")
    return rbac.role_grant(
        actor=actor, subject=target, role=role, team=team, model=model, environment=environment, exists_ok=False
    )


def _validate_scopes(scopes: list[str] | None) -> list[str]:
    if not scopes:
        return [Scope.READ.value]
    unknown = sorted(set(scopes) - set(Scope.values))
    if unknown:
        raise ValidationFailed(
            f"Unknown scope(s): {', '.join(unknown)}. Known scopes: {', '.join(Scope.values)}.",
            errors={"scopes": unknown},
        )
    return sorted(set(scopes))


def _token_expiry(*, actor: Principal, expires_in_days: int | None, now) -> datetime | None:
    """When a new token expires: within ``ASSAY_TOKEN_MAX_DAYS`` (0: no maximum, and then None means
    never), and, when a token creates it, no later than that token expires (a lifetime up to that
    token's remaining days, rounded up, ends with it). Else a 400 naming the limit."""
    max_days = settings.ASSAY_TOKEN_MAX_DAYS
    field = "expires_in_days"
    if expires_in_days is None:
        if max_days:
            raise _invalid(field, f"A token must expire: at most {max_days} days (ASSAY_TOKEN_MAX_DAYS).")
        expires_at = None
    elif expires_in_days < 1:
        raise _invalid(field, "A token lasts at least 1 day.")
    elif max_days and expires_in_days > max_days:
        raise _invalid(field, f"A token lasts at most {max_days} days (ASSAY_TOKEN_MAX_DAYS).")
    else:
        expires_at = now + timedelta(days=expires_in_days)
    if actor.token_id is not None:
        # A token cannot outlive the token that creates it (a leaked one-day token cannot mint a year).
        # Asking for the creator's remaining days, rounded up, gives its exact expiry; more is refused.
        parent = ApiToken.objects.filter(token_id=actor.token_id).values_list("expires_at", flat=True).first()
        if parent is not None:
            remaining = max(0, math.ceil((parent - now).total_seconds() / 86400))
            if expires_at is None or expires_in_days > remaining:
                raise _invalid(
                    field,
                    "A token cannot outlive the token that creates it: yours expires at "
                    f"{parent:%Y-%m-%d %H:%M} UTC, so ask for at most {remaining} day{'s' if remaining != 1 else ''}.",
                )
            expires_at = min(expires_at, parent)
    return expires_at


@transaction.atomic
def token_create(
    *,
    actor: Principal,
    name: str,
    user: User | None = None,
    service_account: ServiceAccount | None = None,
    scopes: list[str] | None = None,
    expires_in_days: int | None = 90,
) -> tuple[ApiToken, str]:
    """Issue a token; returns the row and the token string, which is never shown again.

    A user may create tokens for themselves; tokens for others and for service
    accounts need ``accounts.manage``. A token lasts at most ``ASSAY_TOKEN_MAX_DAYS`` and, when
    created through a token, no longer than that token. Audited as ``api_token.created`` (without the secret).
    """
    if (user is None) == (service_account is None):
        raise ValidationFailed("A token belongs to exactly one user or service account.")
    own = user is not None and actor.kind == PrincipalKind.USER and actor.id == user.pk
    if not own:
        _require_admin(actor, "api_token.created")
    if actor.token_scopes is not None:
        # A leaked narrow token must not be able to mint a wider one.
        wider = sorted(set(_validate_scopes(scopes)) - set(actor.token_scopes))
        if wider:
            raise Denied(
                f"A token cannot create a token with scopes it does not have itself: {', '.join(wider)}.",
                audit_action="api_token.created",
            )
    if not name:
        raise ValidationFailed("Give the token a name.", errors={"name": ["This field is required."]})
    now = timezone.now()
    expires_at = _token_expiry(actor=actor, expires_in_days=expires_in_days, now=now)
    token_id, secret, full = tokens.new_token()
    token = ApiToken.objects.create(
        token_id=token_id,
        secret_hash=tokens.hash_secret(secret),
        name=name,
        user=user,
        service_account=service_account,
        scopes=_validate_scopes(scopes),
        expires_at=expires_at,
    )
    audit.record(
        action="api_token.created",
        actor=actor,
        target=token,
        related=user or service_account,
        after={"name": name, "scopes": token.scopes, "expires_at": token.expires_at, "owner": token.owner_label},
    )
    return token, full


@transaction.atomic
def token_revoke(*, actor: Principal, token_id: str) -> ApiToken:
    """Revoke a token. Its owner or an admin may. Audited as ``api_token.revoked``."""
    token = ApiToken.objects.select_for_update().filter(token_id=token_id).first()
    if token is None:
        raise NotFound("No such token.")
    own = (token.user_id is not None and actor.key == (PrincipalKind.USER, token.user_id)) or (
        token.service_account_id is not None and actor.key == (PrincipalKind.SERVICE_ACCOUNT, token.service_account_id)
    )
    if not own and actor.kind != PrincipalKind.SYSTEM and not rbac.has_global(actor, "accounts.manage"):
        raise Denied(action="accounts.manage", audit_action="api_token.revoked", target=token, visible=False)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit.record(action="api_token.revoked", actor=actor, target=token, after={"revoked_at": token.revoked_at})
    return token


class SignInThrottled(DomainError):
    """Too many sign-in attempts from this address or for this account (429); ``retry_after`` seconds."""

    status_code = 429
    code = "throttled"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, extra={"retry_after": retry_after})
        self.retry_after = retry_after


def login_attempt(*, username: str, password: str) -> User | None:
    """Check a password with lockout: after N failures in a row the account is locked for a while.

    Attempts are rate-limited per client address and per account first (``SignInThrottled``).
    Writes ``user.logged_in``, ``user.login_failed`` or ``user.locked_out``; an unknown
    username is audited too, under the name that was tried, once per address and window
    (``audit.record_summarised``), as are refused (throttled) attempts.
    """
    from django.contrib.auth import authenticate

    wait = throttling.sign_in_wait(address=audit_context.current().client_ip or "", username=username)
    if wait is not None:
        audit.record_summarised(
            kind="login-throttled",
            action="user.login_throttled",
            target=("user", "", username[:150]),
            reason=f"too many sign-in attempts; refused for {wait} s",
        )
        raise SignInThrottled(
            f"Too many sign-in attempts. Try again in {wait} second{'s' if wait != 1 else ''}.", retry_after=wait
        )
    with transaction.atomic():
        user = User.objects.select_for_update().filter(username=username).first()
        if user is not None and user.is_locked():
            audit.record(
                action="user.login_failed",
                outcome=Outcome.DENIED,
                actor=Principal.anonymous(),
                target=user,
                reason="account is locked after repeated failures",
            )
            return None
    authenticated = authenticate(username=username, password=password)
    with transaction.atomic():
        if authenticated is not None:
            User.objects.filter(pk=authenticated.pk).update(failed_login_count=0, locked_until=None)
            audit.record(
                action="user.logged_in",
                actor=Principal(kind=PrincipalKind.USER, id=authenticated.pk, name=authenticated.username),
                target=authenticated,
            )
            return authenticated
        user = User.objects.select_for_update().filter(username=username).first()
        if user is None:
            # Guesses at names that do not exist cost the trail one row per address and window,
            # however many (password spraying): the rest are counted in the next row's summary.
            audit.record_summarised(
                kind="login-unknown",
                action="user.login_failed",
                target=("user", "", username[:150]),
                reason="unknown username",
            )
            return None
        user.failed_login_count += 1
        reason = f"wrong password ({user.failed_login_count} in a row)"
        if user.failed_login_count >= settings.ASSAY_LOGIN_MAX_FAILURES:
            user.locked_until = timezone.now() + timedelta(seconds=settings.ASSAY_LOGIN_LOCKOUT_SECONDS)
            user.failed_login_count = 0
            reason += "; account locked"
        user.save(update_fields=["failed_login_count", "locked_until"])
        audit.record(
            action="user.login_failed", outcome=Outcome.DENIED, actor=Principal.anonymous(), target=user, reason=reason
        )
        return None


@transaction.atomic
def user_logout(*, actor: Principal) -> None:
    """Record a sign-out (the session itself is ended by the view). Audited as ``user.logged_out``."""
    audit.record(action="user.logged_out", actor=actor, target=("user", str(actor.id), actor.name))
