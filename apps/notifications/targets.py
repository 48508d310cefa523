"""The SSRF guard: which URLs a webhook may point at, checked at creation and before every request.

A target must be ``https`` and its host must resolve only to public addresses: not private,
loopback, link-local, multicast, reserved, unspecified, shared (CGNAT) or unique-local, also
when they hide inside an IPv6 form (IPv4-mapped ``::ffff:a.b.c.d``, 6to4, NAT64
``64:ff9b::/96``). The check runs on the resolved addresses, so a host name such as
``localhost`` and odd IPv4 spellings (``2130706433``, ``0x7f.1``) are judged by where they lead.
The sender connects to an address this check returned, never resolving the name again, so a
DNS answer that changes between check and connect (rebinding) cannot redirect it.

An admin may allow a host (``AllowedWebhookHost``): then any address it resolves to is
accepted, and with ``allow_http`` plain http too. Host names are compared lower-cased, exactly.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from apps.core.errors import ValidationFailed

Resolver = Callable[[str, int], list[str]]

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")


class TargetRefused(ValidationFailed):
    """The URL is not a target webhooks may reach (400 in the API)."""

    code = "webhook_target_refused"
    title = "Webhook target refused"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, errors={"url": [detail]})


class ResolutionFailed(Exception):
    """The host did not resolve (possibly for now): a delivery retries, a creation is refused."""


@dataclass(frozen=True)
class Target:
    """A checked target: where to connect (``addresses``, in order) and what to ask for."""

    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]
    allowed_explicitly: bool


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ResolutionFailed(f"{host} does not resolve: {exc}")
    seen: list[str] = []
    for info in infos:
        address = info[4][0]
        if address not in seen:
            seen.append(address)
    return seen


def public_address_problem(address: str) -> str:
    """Why ``address`` is not a public unicast address, or "" when it is."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            inner = public_address_problem(str(embedded))
            return f"{inner} (inside {ip})" if inner else ""
        if ip.teredo:
            return f"{ip} is a Teredo address"
        if ip in _UNIQUE_LOCAL:
            return f"{ip} is a unique-local address"
    for name in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
        if getattr(ip, f"is_{name}"):
            article = "an" if name == "unspecified" else "a"
            return f"{ip} is {article} {name.replace('_', '-')} address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return f"{ip} is a site-local address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return ""


def parse(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path with query) of a webhook URL, or ``TargetRefused``."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"Not a valid URL: {exc}.")
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise TargetRefused("A webhook URL must start with https://.")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("A webhook URL may not carry credentials; sign requests with the webhook's secret.")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise TargetRefused("A webhook URL must name a host.")
    if parts.fragment:
        raise TargetRefused("A webhook URL may not have a fragment.")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, host, port or (443 if scheme == "https" else 80), path


def check(url: str, *, allowed: dict[str, bool], resolver: Resolver = system_resolver) -> Target:
    """Check ``url`` against the guard and resolve it; ``allowed`` maps allowed hosts to their allow_http.

    Raises ``TargetRefused`` (never allowed) or ``ResolutionFailed`` (the name does not resolve).
    """
    scheme, host, port, path = parse(url)
    explicitly = host in allowed
    if scheme == "http" and not (explicitly and allowed[host]):
        raise TargetRefused("A webhook URL must use https (an admin may allow plain http for one host).")
    addresses = tuple(resolver(host, port))
    if not addresses:
        raise ResolutionFailed(f"{host} resolves to no address")
    if not explicitly:
        for address in addresses:
            problem = public_address_problem(address)
            if problem:
                raise TargetRefused(
                    f"{host} resolves to {problem}; webhooks reach public addresses only "
                    "(an admin may allow this host explicitly)."
                )
    return Target(scheme, host, port, path, addresses, explicitly)


def allowed_hosts() -> dict[str, bool]:
    """The hosts admins allowed, with whether plain http is allowed for each."""
    from .models import AllowedWebhookHost

    return dict(AllowedWebhookHost.objects.values_list("host", "allow_http"))
