"""Domain errors and the one place that turns them into HTTP responses.

Services raise these; ``apps.core.api.exceptions.api_exception_handler`` renders them for the API as
``application/problem+json`` (RFC 9457) and the dashboard's middleware renders
them as pages. Both write the audit event for a denied attempt, in a
transaction of its own, so a refused change rolls back but its refusal stays.
"""

from __future__ import annotations

import logging
from typing import Any

from rest_framework import status
from rest_framework.response import Response

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class DomainError(Exception):
    """A request the domain refuses, with an HTTP status and a stable code."""

    status_code = status.HTTP_400_BAD_REQUEST
    code = "invalid"
    title = "Invalid request"

    def __init__(self, detail: str = "", *, errors: dict | None = None, extra: dict | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors or {}
        self.extra = extra or {}


class ValidationFailed(DomainError):
    code = "validation_failed"
    title = "Validation failed"


class UnsupportedContent(DomainError):
    status_code = status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
    code = "unsupported_content"
    title = "Unsupported content"


class PayloadTooLarge(DomainError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    code = "payload_too_large"
    title = "Payload too large"


class JsonTooDeep(DomainError):
    """A JSON body nested deeper than ``ASSAY_MAX_JSON_DEPTH`` levels (apps/core/parsers.py)."""

    code = "json_too_deep"
    title = "JSON nested too deeply"


class Conflict(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "conflict"
    title = "Conflict"


class InvalidTransition(Conflict):
    code = "invalid_transition"
    title = "Invalid state transition"


class NotFound(DomainError):
    """Nothing there, or something the actor may not see: both read as 404.

    The API words every 404 as a hidden object's ("Not found."), so that the message never tells
    an object the actor may not see from one that does not exist; ``public`` keeps the detail for
    404s about no object at all (an unknown API path).
    """

    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"
    title = "Not found"

    def __init__(self, detail: str = "", *, public: bool = False, **kwargs) -> None:
        super().__init__(detail, **kwargs)
        self.public = public


class Denied(DomainError):
    """A principal tried something rbac refuses.

    ``visible`` says whether the actor may see the target: if not, the denial
    renders as 404 so that existence is not revealed. Either way it is audited.
    ``code`` is ``permission_denied`` (the account lacks it) or ``token_scope_missing``
    (the account has it, the API token's scopes do not); ``extra`` names the permission
    and the scope in the problem document.
    """

    status_code = status.HTTP_403_FORBIDDEN
    code = "permission_denied"
    title = "Permission denied"

    def __init__(
        self,
        detail: str = "",
        *,
        action: str = "",
        audit_action: str = "",
        target: Any = None,
        target_ref: tuple[str, str, str] | None = None,
        visible: bool = True,
        code: str = "",
        extra: dict | None = None,
    ) -> None:
        super().__init__(detail or "You do not have permission to perform this action.", extra=extra)
        self.action = action
        self.audit_action = audit_action
        self.target = target
        self.target_ref = target_ref
        self.visible = visible
        if code == "token_scope_missing":
            # The account may do it; the API token used may not (``apps.rbac.services.refusal``).
            self.code, self.title = code, "Token scope missing"
        if not visible:
            self.status_code = status.HTTP_404_NOT_FOUND
            self.code = "not_found"
            self.title = "Not found"
            self.detail = "Not found."
            self.extra = {}


# Lock errors that mean "the database is busy, try again", not "this request is wrong": SQLite's
# write lock held past the busy timeout, PostgreSQL's lock_timeout and deadlock victims.
_BUSY_MESSAGES = ("database is locked", "database table is locked", "lock timeout", "deadlock detected")
BUSY_RETRY_AFTER_SECONDS = 2


def is_database_busy(exc: BaseException) -> bool:
    """True for a database error that only says another writer held a lock for too long."""
    from django.db import OperationalError

    return isinstance(exc, OperationalError) and any(m in str(exc).lower() for m in _BUSY_MESSAGES)


def problem_body(status_code: int, title: str, detail: str, *, code: str, request=None, **extra: Any) -> dict:
    """The members of an RFC 9457 problem document (see ``problem``)."""
    body: dict[str, Any] = {
        "type": f"https://assay.dev/problems/{code}",
        "title": title,
        "status": status_code,
        "detail": detail,
        "code": code,
    }
    if request is not None:
        body["instance"] = request.path
        rid = getattr(request, "request_id", None)
        if rid:
            body["request_id"] = rid
    body.update({k: v for k, v in extra.items() if v not in (None, {}, [])})
    return body


def plain_problem(status_code: int, title: str, detail: str, *, code: str, request=None, **extra: Any):
    """A problem document as a plain Django response, for code that runs outside DRF (error handlers)."""
    import json

    from django.http import HttpResponse

    body = problem_body(status_code, title, detail, code=code, request=request, **extra)
    return HttpResponse(json.dumps(body), status=status_code, content_type=PROBLEM_JSON)


def problem(status_code: int, title: str, detail: str, *, code: str, request=None, **extra: Any) -> Response:
    """An RFC 9457 problem response: type, title, status, detail, code, instance, request_id, then ``extra``."""
    body = problem_body(status_code, title, detail, code=code, request=request, **extra)
    if request is not None and hasattr(request, "accepted_renderer"):
        # A problem is JSON even from a view that renders something else (the OpenAPI schema's YAML).
        from rest_framework.renderers import JSONRenderer

        request.accepted_renderer, request.accepted_media_type = JSONRenderer(), PROBLEM_JSON
    return Response(body, status=status_code, content_type=PROBLEM_JSON)


def busy_problem(request=None) -> Response:
    """503 with ``Retry-After``: the database stayed locked by other writers; nothing was changed."""
    logger.warning("database busy: answered 503 for %s", getattr(request, "path", "?"))
    response = problem(
        503,
        "Service busy",
        "The database is busy with other writes; nothing was changed. Try again shortly.",
        code="database_busy",
        request=request,
    )
    response["Retry-After"] = str(BUSY_RETRY_AFTER_SECONDS)
    return response
