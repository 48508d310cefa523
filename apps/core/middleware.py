"""Dashboard middleware: domain errors become pages."""

from __future__ import annotations

from apps.core.errors import DomainError


class DomainErrorMiddleware:
    """Render a ``DomainError`` escaping a dashboard view (403/404 pages, denials audited).

    API views never get here: DRF hands their errors to ``api_exception_handler``.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, DomainError) or request.path.startswith("/api/"):
            return None
        from apps.core.views import domain_error

        return domain_error(request, exception)
