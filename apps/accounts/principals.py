"""Build ``Principal`` values from accounts rows."""

from __future__ import annotations

from apps.core.principals import Principal, PrincipalKind

from .models import ApiToken, ServiceAccount, User


def principal_for_user(user: User, token: ApiToken | None = None) -> Principal:
    return Principal(
        kind=PrincipalKind.USER,
        id=user.pk,
        name=user.username,
        token_id=token.token_id if token else None,
        token_scopes=tuple(token.scopes) if token else None,
        is_superuser=user.is_superuser,
    )


def principal_for_service_account(account: ServiceAccount, token: ApiToken | None = None) -> Principal:
    return Principal(
        kind=PrincipalKind.SERVICE_ACCOUNT,
        id=account.pk,
        name=account.name,
        owner_user_id=account.owner_id,
        token_id=token.token_id if token else None,
        token_scopes=tuple(token.scopes) if token else None,
    )


def principal_for_token(token: ApiToken) -> Principal:
    if token.service_account_id:
        return principal_for_service_account(token.service_account, token)
    return principal_for_user(token.user, token)
