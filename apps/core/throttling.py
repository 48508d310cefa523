"""Rate limits: anonymous API use per client address, authenticated use per principal, sign-in
attempts per address and per account.

Counters live in the default cache, which every process shares (Redis with ``ASSAY_CACHE_URL``,
else a folder under ``var/``), so a limit holds however many server processes answer. Rates are
settings read on every check (``"120/minute"``; ``"off"`` turns one off): ``ASSAY_ANON_RATE``,
``ASSAY_USER_RATE``, ``ASSAY_LOGIN_ADDRESS_RATE``, ``ASSAY_LOGIN_ACCOUNT_RATE``.
A refused API request is a 429 problem with ``Retry-After``; a refused sign-in a 429 page.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

OFF = {"off", "none", "0"}
PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _rate(setting: str) -> tuple[int, int] | None:
    """(requests, seconds) from a setting such as ``"120/minute"``; None when off."""
    value = getattr(settings, setting, None)
    if value is None or str(value).strip().lower() in OFF:
        return None
    count, _, period = str(value).strip().partition("/")
    return int(count), PERIODS[period.strip()[0].lower()]


def consume(scope: str, ident: str, rate_setting: str) -> int | None:
    """Count one attempt of ``scope`` by ``ident``; None if allowed, else the seconds to wait (at least 1).

    A sliding window estimated from two fixed ones: this period's counter plus the previous
    period's, weighted by how much of it still lies within one period of now. One counter per
    (scope, who, period), incremented atomically on Redis, so a check costs two cache round trips
    whatever the rate (keeping every request's time, as DRF's throttles do, costs time in
    proportion to the rate), and concurrent processes never lose a count. A refused attempt is
    not counted, so a client that keeps trying gets back in when its rate allows.
    """
    rate = _rate(rate_setting)
    if rate is None:
        return None
    limit, period = rate
    now = time.time()
    window = int(now // period)
    who = hashlib.sha256(ident.encode()).hexdigest()[:32]
    key = f"assay:throttle:{scope}:{who}:{window}"
    try:
        count = cache.incr(key)  # the period's counter exists but for its first attempt
    except ValueError:
        count = 1 if cache.add(key, 1, timeout=2 * period + 1) else cache.incr(key)
    previous = cache.get(f"assay:throttle:{scope}:{who}:{window - 1}") or 0
    elapsed = (now - window * period) / period  # fraction of this period gone
    if count + previous * (1 - elapsed) <= limit:
        return None
    with contextlib.suppress(ValueError):
        cache.decr(key)
    count -= 1  # the attempts that counted
    if count + 1 > limit:  # this period alone is full: its end, then until it weighs little enough
        wait = (1 - elapsed) * period + period * max(0.0, 1 - (limit - 1) / max(count, 1))
    else:
        wait = period * (1 - (limit - count - 1) / previous) - elapsed * period
    return max(1, math.ceil(wait))


def _client_address(request) -> str:
    # Set by the request middleware (X-Forwarded-For is believed only behind a configured proxy).
    return getattr(request, "client_ip", None) or request.META.get("REMOTE_ADDR") or "unknown"


class _RateThrottle(BaseThrottle):
    """A DRF throttle over ``consume``: its scope, its rate setting, and who a request counts as."""

    scope = ""
    rate_setting = ""

    def __init__(self) -> None:
        self._wait: int | None = None

    def ident(self, request) -> str | None:
        raise NotImplementedError

    def allow_request(self, request, view) -> bool:
        ident = self.ident(request)
        if ident is None:
            return True
        self._wait = consume(self.scope, ident, self.rate_setting)
        return self._wait is None

    def wait(self) -> float | None:
        return self._wait


class AnonymousRateThrottle(_RateThrottle):
    """Requests that carry no valid credentials, per client address (``ASSAY_ANON_RATE``).

    DRF checks throttles after permissions, so an anonymous request to an endpoint that needs
    credentials is counted by the API's exception handler before its 401 (``apps.core.errors``).
    """

    scope = "anon"
    rate_setting = "ASSAY_ANON_RATE"

    def ident(self, request) -> str | None:
        principal = getattr(request, "principal", None)
        if principal is not None and principal.is_authenticated:
            return None
        return _client_address(request)


class PrincipalRateThrottle(_RateThrottle):
    """Authenticated API requests, per principal (a person, or a service account) (``ASSAY_USER_RATE``)."""

    scope = "principal"
    rate_setting = "ASSAY_USER_RATE"

    def ident(self, request) -> str | None:
        principal = getattr(request, "principal", None)
        if principal is None or not principal.is_authenticated:
            return None
        return f"{principal.kind}:{principal.id}"


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
