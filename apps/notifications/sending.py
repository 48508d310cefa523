"""One signed HTTP POST to a checked target, with the standard library only (the web process may import it).

The connection goes to an address the SSRF guard returned (``targets.check``); TLS still checks
the certificate against the host name (SNI and verification use the name, not the address).
Redirects are never followed (``http.client`` does not), the response body is read only up to
``EXCERPT_BYTES``, and every socket operation has the timeout.

Signature scheme (Stripe-style)::

    Assay-Timestamp: <t, unix seconds>
    Assay-Signature: t=<t>,v1=<hex HMAC-SHA256(secret, f"{t}.{raw body}")>
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import socket
import ssl
import time
from dataclasses import dataclass

from .targets import Target

EXCERPT_BYTES = 1024
USER_AGENT = "Assay-Webhooks/1"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Assay-Signature`` header's value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def headers_for(*, secret: str, event: str, delivery_id: str, body: bytes, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Assay-Event": event,
        "Assay-Delivery": delivery_id,
        "Assay-Timestamp": str(timestamp),
        "Assay-Signature": signature(secret, timestamp, body),
    }


@dataclass(frozen=True)
class Sent:
    """What one request got: a status and a bounded excerpt, or an error; how long it took; where it went."""

    status_code: int | None
    excerpt: str
    error: str
    duration_ms: int
    address: str
    retry_after: str = ""


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, *, address: str, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(target: Target, *, body: bytes, headers: dict[str, str], timeout: float) -> Sent:
    """POST ``body`` to ``target``, trying its addresses in order until one connects."""
    started = time.monotonic()
    last_error = ""
    address = ""
    for address in target.addresses:
        if target.scheme == "https":
            conn = _PinnedHTTPS(
                target.host, target.port, address=address, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            conn = _PinnedHTTP(target.host, target.port, address=address, timeout=timeout)
        try:
            try:
                conn.connect()
            except OSError as exc:
                last_error = f"could not connect to {address}: {exc}"
                continue
            conn.request("POST", target.path, body=body, headers=headers)
            response = conn.getresponse()
            excerpt = response.read(EXCERPT_BYTES).decode("utf-8", "replace")
            return Sent(
                status_code=response.status,
                excerpt=excerpt,
                error="",
                duration_ms=_ms(started),
                address=address,
                retry_after=response.getheader("Retry-After", "") or "",
            )
        except (OSError, http.client.HTTPException) as exc:
            return Sent(None, "", f"{exc.__class__.__name__}: {exc}"[:500], _ms(started), address)
        finally:
            conn.close()
    return Sent(None, "", last_error[:500] or "no address to connect to", _ms(started), address)


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
