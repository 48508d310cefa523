"""Who is acting, from where, under which request id: set once per request or task.

The request middleware and the Celery signals fill this in; ``audit.record``
reads it, so services never thread request details through their arguments.
"""

from __future__ import annotations

import contextvars
import re
import uuid
from dataclasses import dataclass, field, replace

from apps.core.principals import Principal

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass(frozen=True)
class AuditContext:
    """Where the current unit of work came from."""

    source: str = "cli"  # web | api | worker | cli
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    client_ip: str | None = None
    principal: Principal | None = None

    def as_headers(self) -> dict:
        headers = {"assay_request_id": self.request_id}
        if self.principal is not None:
            headers["assay_principal"] = self.principal.as_dict()
        return headers


_current: contextvars.ContextVar[AuditContext | None] = contextvars.ContextVar("assay_audit_context", default=None)


def current() -> AuditContext:
    ctx = _current.get()
    if ctx is None:
        ctx = AuditContext()
        _current.set(ctx)
    return ctx


def set_context(ctx: AuditContext) -> contextvars.Token:
    return _current.set(ctx)


def update(**changes: object) -> AuditContext:
    ctx = replace(current(), **changes)
    _current.set(ctx)
    return ctx


def reset() -> None:
    _current.set(None)


def clean_request_id(value: str | None) -> str:
    """Accept a caller's X-Request-ID when it is a sane token, else mint one."""
    if value and _REQUEST_ID_RE.match(value):
        return value
    return uuid.uuid4().hex


def enter_task(headers: dict, *, task_name: str = "") -> AuditContext:
    """Called as a Celery task starts: the request id and principal travel in the headers."""
    principal = headers.get("assay_principal")
    ctx = AuditContext(
        source="worker",
        request_id=clean_request_id(headers.get("assay_request_id")),
        principal=Principal.from_dict(principal) if principal else None,
    )
    _current.set(ctx)
    return ctx
