"""DRF authentication: bearer tokens for CI, sessions for the browser.

Both put the principal into the audit context, so every event the request
causes names the actor and the token used.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions

from apps.audit import context
from apps.core.models import first_or_none

from . import tokens
from .models import ApiToken
from .principals import principal_for_token, principal_for_user

# last_used_at is written at most this often per token, so reads stay reads.
LAST_USED_RESOLUTION = timedelta(seconds=60)


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer assay_<id>_<secret>``."""

    keyword = "bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: expected 'Bearer <token>'.")
        try:
            raw = header[1].decode()
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("Malformed token.") from exc
        parsed = tokens.parse(raw)
        if parsed is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        token_id, secret = parsed
        token = first_or_none(
            ApiToken.objects.select_related("user", "service_account", "service_account__owner").filter(
                token_id=token_id
            )
        )
        if token is None or not tokens.secret_matches(secret, token.secret_hash):
            raise exceptions.AuthenticationFailed("Invalid token.")
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("Token has been revoked.")
        now = timezone.now()
        if token.expires_at is not None and token.expires_at <= now:
            raise exceptions.AuthenticationFailed("Token has expired.")
        if token.service_account_id:
            if not token.service_account.is_active:
                raise exceptions.AuthenticationFailed("Service account is disabled.")
            user = token.service_account.owner
        else:
            user = token.user
        if not user.is_active:
            raise exceptions.AuthenticationFailed("Token owner is disabled.")
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=token.pk).update(
                last_used_at=now, last_used_ip=context.current().client_ip or ""
            )
        principal = principal_for_token(token)
        context.update(principal=principal)
        request.principal = principal
        return (user, token)

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="assay"'


class SessionAuthentication(authentication.SessionAuthentication):
    """Django sessions with CSRF, for the dashboard's own API calls."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is not None:
            principal = principal_for_user(result[0])
            context.update(principal=principal)
            request.principal = principal
        return result
