"""Dashboard error pages, and the one dashboard helper that renders domain errors.

The API renders domain errors through ``apps.core.errors.api_exception_handler``;
dashboard views let them propagate and ``apps.core.middleware.DomainErrorMiddleware``
hands them to ``domain_error`` below, which audits a denial (in a transaction
of its own) and renders the matching page.
"""

from __future__ import annotations

from django.shortcuts import render

from apps.core.errors import Denied, DomainError


def forbidden(request, exception=None):
    """403 page (Django's ``handler403``)."""
    detail = getattr(exception, "detail", None) or str(exception or "")
    return render(request, "errors/403.html", {"detail": detail}, status=403)


def not_found(request, exception=None):
    """404 page (Django's ``handler404``); out-of-scope objects land here too."""
    return render(request, "errors/404.html", status=404)


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
