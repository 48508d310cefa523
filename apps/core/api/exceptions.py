"""The API's one exception handler: every error as problem+json, denials audited on the way.

It sits above the audit trail (it records refused attempts), so it lives here rather than beside
the domain errors in ``apps.core.errors``, which every app, the audit trail included, imports.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_default_handler

from apps.audit import services as audit_services
from apps.core.errors import Denied, DomainError, NotFound, busy_problem, is_database_busy, problem


def _anonymous_wait(request, view) -> float | None:
    """Count a request without valid credentials against its address's anonymous rate (DRF checks
    throttles only after permissions, so a 401 would otherwise never be counted); seconds to wait if over."""
    from apps.core.throttling import AnonymousRateThrottle

    if request is None:
        return None
    throttle = AnonymousRateThrottle()
    return None if throttle.allow_request(request, view) else (throttle.wait() or 1)


def _flatten_drf_detail(detail: Any) -> tuple[str, dict]:
    """DRF's error detail as (one readable sentence, {field: [messages]})."""
    if isinstance(detail, dict):
        errors = {k: [str(x) for x in (v if isinstance(v, list) else [v])] for k, v in detail.items()}
        first = next(iter(errors.items()), None)
        if first is None or not first[1]:
            return "Invalid input.", errors
        return (first[1][0] if first[0] == "non_field_errors" else f"{first[0]}: {first[1][0]}"), errors
    if isinstance(detail, list):
        return "; ".join(str(x) for x in detail), {"non_field_errors": [str(x) for x in detail]}
    return str(detail), {}


# (title, code) for DRF's own exceptions, by class; the first match wins.
_DRF_PROBLEMS: tuple[tuple[type, str, str], ...] = (
    (drf_exceptions.ValidationError, "Validation failed", "validation_failed"),
    (drf_exceptions.ParseError, "Malformed request", "parse_error"),
    (drf_exceptions.PermissionDenied, "Permission denied", "permission_denied"),
    (drf_exceptions.NotFound, "Not found", "not_found"),
    (drf_exceptions.MethodNotAllowed, "Method not allowed", "method_not_allowed"),
    (drf_exceptions.NotAcceptable, "Not acceptable", "not_acceptable"),
    (drf_exceptions.UnsupportedMediaType, "Unsupported media type", "unsupported_media_type"),
    (drf_exceptions.Throttled, "Too many requests", "throttled"),
)


def _drf_problem(exc: drf_exceptions.APIException) -> tuple[str, str]:
    for cls, title, code in _DRF_PROBLEMS:
        if isinstance(exc, cls):
            return title, code
    codes = exc.get_codes()
    return "Error", codes if isinstance(codes, str) else "error"


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """Render every API error as problem+json, auditing denials on the way.

    Domain errors keep their status, code and extra members; DRF's and Django's
    own errors are mapped to the same shape. 401 carries ``WWW-Authenticate``.
    A database lock held too long by other writers is a 503 with ``Retry-After``.
    Anything else is left to Django (a 500, logged with its traceback).
    """
    request = context.get("request")
    if isinstance(exc, Denied):
        audit_services.record_denial(exc, request=request)
        return problem(exc.status_code, exc.title, exc.detail, code=exc.code, request=request, **exc.extra)
    if isinstance(exc, NotFound) and not exc.public:
        # Worded as a hidden object's 404 (``Denied`` with ``visible=False``): a message naming
        # what is missing would tell anyone which of the objects they cannot see exist.
        return problem(404, "Not found", "Not found.", code="not_found", request=request)
    if isinstance(exc, DomainError):
        return problem(
            exc.status_code, exc.title, exc.detail, code=exc.code, request=request, errors=exc.errors, **exc.extra
        )
    if isinstance(exc, RequestDataTooBig):
        # Django's DATA_UPLOAD_MAX_MEMORY_SIZE for form fields, raised while DRF parses the body.
        return problem(413, "Payload too large", str(exc), code="payload_too_large", request=request)
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        return problem(400, "Validation failed", str(exc), code="too_many_fields", request=request)
    if is_database_busy(exc):
        return busy_problem(request)
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    if isinstance(exc, drf_exceptions.NotAuthenticated | drf_exceptions.AuthenticationFailed):
        audit_services.record_unauthenticated(request=request, reason=str(exc.detail))
        wait = _anonymous_wait(request, context.get("view"))
        if wait is None:
            response = problem(
                401, "Authentication required", str(exc.detail), code="not_authenticated", request=request
            )
            response["WWW-Authenticate"] = 'Bearer realm="assay"'
            return response
        exc = drf_exceptions.Throttled(wait)  # over the anonymous rate: 429 with Retry-After, below
    if isinstance(exc, drf_exceptions.PermissionDenied):
        audit_services.record_denial(Denied(str(exc.detail), audit_action="request.denied"), request=request)
    response = drf_default_handler(exc, context)
    if response is None or not isinstance(exc, drf_exceptions.APIException):
        return response
    detail, errors = _flatten_drf_detail(exc.detail)
    title, code = _drf_problem(exc)
    new = problem(response.status_code, title, detail, code=code, request=request, errors=errors)
    for header in ("Retry-After", "Allow"):
        if header in response:
            new[header] = response[header]
    return new
