"""Dashboard error pages, and the one dashboard helper that renders domain errors.

The API renders domain errors through ``apps.core.api.exceptions.api_exception_handler``;
dashboard views let them propagate and ``apps.core.middleware.DomainErrorMiddleware``
hands them to ``domain_error`` below, which audits a denial (in a transaction
of its own) and renders the matching page.
"""

from __future__ import annotations

from django.shortcuts import render
from django.views import defaults

from apps.core.errors import BUSY_RETRY_AFTER_SECONDS, Denied, DomainError, plain_problem


def _is_api(request) -> bool:
    return request.path_info.startswith("/api/")


def forbidden(request, exception=None):
    """403 page (Django's ``handler403``)."""
    detail = getattr(exception, "detail", None) or str(exception or "")
    return render(request, "errors/403.html", {"detail": detail}, status=403)


def not_found(request, exception=None):
    """404 page (Django's ``handler404``); out-of-scope objects land here too. Under /api/ a problem+json 404."""
    if _is_api(request):
        return plain_problem(404, "Not found", f"No API endpoint at {request.path}.", code="not_found", request=request)
    return render(request, "errors/404.html", status=404)


def server_error(request):
    """500 (Django's ``handler500``): problem+json under /api/, else Django's plain page; never any detail."""
    if _is_api(request):
        return plain_problem(
            500,
            "Server error",
            "The server failed to answer; the error is logged.",
            code="server_error",
            request=request,
        )
    return defaults.server_error(request)


def database_busy(request):
    """503 page with ``Retry-After``: the database stayed locked by other writers and nothing was changed."""
    context = {
        "status": 503,
        "title": "Busy",
        "detail": "The database is busy with other changes; nothing was saved. Try again in a moment.",
    }
    response = render(request, "errors/error.html", context, status=503)
    response["Retry-After"] = str(BUSY_RETRY_AFTER_SECONDS)
    return response


def domain_error(request, exc: DomainError):
    """Render a domain error raised by a dashboard view; a denial is audited first."""
    if isinstance(exc, Denied):
        from apps.audit import services as audit

        audit.record_denial(exc, request=request)
    if exc.status_code == 404:
        return not_found(request, exc)
    if exc.status_code == 403:
        return forbidden(request, exc)
    context = {"status": exc.status_code, "title": exc.title, "detail": exc.detail}
    return render(request, "errors/error.html", context, status=exc.status_code)
