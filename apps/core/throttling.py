"""Rate limits: anonymous API use per client address, authenticated use per principal, sign-in
attempts per address and per account.

Counters live in the default cache, which every process shares (Redis with ``ASSAY_CACHE_URL``,
else a folder under ``var/``), so a limit holds however many server processes answer. Rates are
settings read on every check (``"120/minute"``; ``"off"`` turns one off): ``ASSAY_ANON_RATE``,
``ASSAY_USER_RATE``, ``ASSAY_LOGIN_ADDRESS_RATE``, ``ASSAY_LOGIN_ACCOUNT_RATE``.
A refused API request is a 429 problem with ``Retry-After``; a refused sign-in a 429 page.
"""

from __future__ import annotations

import hashlib
import math

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

OFF = {"off", "none", "0"}


def _rate(setting: str) -> str | None:
    value = getattr(settings, setting, None)
    return None if value is None or str(value).strip().lower() in OFF else str(value)


def _client_address(request) -> str:
    # Set by the request middleware (X-Forwarded-For is believed only behind a configured proxy).
    return getattr(request, "client_ip", None) or request.META.get("REMOTE_ADDR") or "unknown"


class _SettingRateThrottle(SimpleRateThrottle):
    """DRF's sliding-window throttle with its rate read from a Django setting at each request."""

    rate_setting = ""

    def get_rate(self) -> str | None:
        return _rate(self.rate_setting)


class AnonymousRateThrottle(_SettingRateThrottle):
    """Requests that carry no valid credentials, per client address (``ASSAY_ANON_RATE``).

    DRF checks throttles after permissions, so an anonymous request to an endpoint that needs
    credentials is counted by the API's exception handler before its 401 (``apps.core.errors``).
    """

    scope = "anon"
    rate_setting = "ASSAY_ANON_RATE"

    def get_cache_key(self, request, view) -> str | None:
        principal = getattr(request, "principal", None)
        if principal is not None and principal.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": _client_address(request)}


class PrincipalRateThrottle(_SettingRateThrottle):
    """Authenticated API requests, per principal (a person, or a service account) (``ASSAY_USER_RATE``)."""

    scope = "principal"
    rate_setting = "ASSAY_USER_RATE"

    def get_cache_key(self, request, view) -> str | None:
        principal = getattr(request, "principal", None)
        if principal is None or not principal.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": f"{principal.kind}:{principal.id}"}


class _KeyedThrottle(SimpleRateThrottle):
    """The same sliding window for a key that is no request's (an address, a username)."""

    def __init__(self, scope: str, ident: str, rate: str) -> None:
        self.scope, self.ident, self.rate = scope, ident, rate
        self.num_requests, self.duration = self.parse_rate(rate)

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.ident}


def consume(scope: str, ident: str, rate_setting: str) -> int | None:
    """Count one attempt of ``scope`` by ``ident``; None if allowed, else the seconds to wait (at least 1)."""
    rate = _rate(rate_setting)
    if rate is None:
        return None
    throttle = _KeyedThrottle(scope, hashlib.sha256(ident.encode()).hexdigest()[:32], rate)
    if throttle.allow_request(None, None):
        return None
    return max(1, math.ceil(throttle.wait() or 1))


def sign_in_wait(*, address: str, username: str) -> int | None:
    """Count a sign-in attempt against its address's and its account's limits; seconds to wait if over either.

    The address limit (``ASSAY_LOGIN_ADDRESS_RATE``) stops one client spraying passwords over many
    usernames; the account limit (``ASSAY_LOGIN_ACCOUNT_RATE``) stops many clients guessing one
    account's password (known or not: the answer does not say which).
    """
    waits = [
        consume("login-address", address or "unknown", "ASSAY_LOGIN_ADDRESS_RATE"),
        consume("login-account", username.strip().lower(), "ASSAY_LOGIN_ACCOUNT_RATE"),
    ]
    waits = [w for w in waits if w is not None]
    return max(waits) if waits else None
