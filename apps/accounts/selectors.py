"""Reads for accounts: a principal's own tokens, sign-in lock state, operator look-ups."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from apps.core.errors import NotFound
from apps.core.principals import Principal, PrincipalKind

from .models import ApiToken, ServiceAccount, Team, User


def token_list(*, actor: Principal) -> QuerySet[ApiToken]:
    """The actor's own tokens (a person's, or a service account's), newest first."""
    if actor.kind == PrincipalKind.USER:
        return ApiToken.objects.filter(user_id=actor.id).order_by("-created_at", "-id")
    if actor.kind == PrincipalKind.SERVICE_ACCOUNT:
        return ApiToken.objects.filter(service_account_id=actor.id).order_by("-created_at", "-id")
    return ApiToken.objects.none()


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


def service_account_by_name(*, name: str) -> ServiceAccount:
    account = ServiceAccount.objects.select_related("owner").filter(name=name).first()
    if account is None:
        raise NotFound(f"No service account named {name!r}.")
    return account
