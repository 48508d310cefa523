"""Writes for people, teams, service accounts, tokens and sign-in.

Every function takes an explicit ``actor``, runs in one transaction and
writes its audit event there. Operator commands act as ``Principal.system``.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.audit import services as audit
from apps.audit.choices import Outcome
from apps.core.errors import Conflict, Denied, NotFound, ValidationFailed
from apps.core.principals import Principal, PrincipalKind
from apps.rbac import services as rbac
from apps.rbac.roles import Scope

from . import tokens
from .models import ApiToken, ServiceAccount, Team, TeamMembership, User


def _require_admin(actor: Principal, audit_action: str) -> None:
    if actor.kind != PrincipalKind.SYSTEM:
        rbac.require(actor, "accounts.manage", audit_action=audit_action)


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


@transaction.atomic
def team_create(*, actor: Principal, name: str, display_name: str = "", description: str = "") -> Team:
    """Create a team. Audited as ``team.created``."""
    _require_admin(actor, "team.created")
    if Team.objects.filter(name=name).exists():
        raise Conflict(f"A team named {name!r} already exists.")
    team = Team.objects.create(name=name, display_name=display_name, description=description)
    audit.record(action="team.created", actor=actor, target=team, after={"name": name})
    return team


@transaction.atomic
def team_member_add(*, actor: Principal, team: Team, user: User) -> TeamMembership:
    """Add a user to a team (idempotent). Audited as ``team.member_added``."""
    _require_admin(actor, "team.member_added")
    membership, created = TeamMembership.objects.get_or_create(team=team, user=user)
    if created:
        audit.record(action="team.member_added", actor=actor, target=team, related=user, after={"user": user.username})
        rbac.forget_cached_grants()
    return membership


@transaction.atomic
def service_account_create(
    *, actor: Principal, name: str, owner: User, team: Team | None = None, description: str = ""
) -> ServiceAccount:
    """Create a CI service account owned by a person. Audited as ``service_account.created``."""
    _require_admin(actor, "service_account.created")
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
    accounts need ``accounts.manage``. Audited as ``api_token.created`` (without the secret).
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
    if expires_in_days is not None and not (1 <= expires_in_days <= 3650):
        raise ValidationFailed("expires_in_days must be between 1 and 3650.")
    token_id, secret, full = tokens.new_token()
    token = ApiToken.objects.create(
        token_id=token_id,
        secret_hash=tokens.hash_secret(secret),
        name=name,
        user=user,
        service_account=service_account,
        scopes=_validate_scopes(scopes),
        expires_at=timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None,
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


def login_attempt(*, username: str, password: str) -> User | None:
    """Check a password with lockout: after N failures in a row the account is locked for a while.

    Writes ``user.logged_in``, ``user.login_failed`` or ``user.locked_out``; an unknown
    username is audited too, under the name that was tried.
    """
    from django.contrib.auth import authenticate

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
            audit.record(
                action="user.login_failed",
                outcome=Outcome.DENIED,
                actor=Principal.anonymous(),
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
