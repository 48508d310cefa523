"""Middleware: domain errors become pages; the browser's middleware stands aside for API tokens."""

from __future__ import annotations

from django.utils.module_loading import import_string

from apps.core.errors import DomainError, is_database_busy


class DomainErrorMiddleware:
    """Render a ``DomainError`` escaping a dashboard view (403/404 pages, denials audited), and a
    database that stayed locked by other writers as a 503 page with ``Retry-After``.

    API views never get here: DRF hands their errors to ``api_exception_handler``.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if request.path.startswith("/api/"):
            return None
        if is_database_busy(exception):
            from apps.core.views import database_busy

            return database_busy(request)
        if not isinstance(exception, DomainError):
            return None
        from apps.core.views import domain_error

        return domain_error(request, exception)


class ContentSecurityPolicyMiddleware:
    """Send ``Content-Security-Policy`` (``ASSAY_CONTENT_SECURITY_POLICY``) on every response.

    The default lets a page load scripts, styles, images and fonts from this site only, with no
    inline script or style, no plugins and no framing, and post forms only to this site: markup
    injected into a page cannot run. The dashboard and the API docs page carry none inline
    (their scripts and styles are static files). ``X-Content-Type-Options``, ``Referrer-Policy``
    and ``Cross-Origin-Opener-Policy`` come from Django's ``SecurityMiddleware``.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        from django.conf import settings

        response = self.get_response(request)
        policy = settings.ASSAY_CONTENT_SECURITY_POLICY
        if policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy
        return response


def is_token_api_request(request) -> bool:
    """An API request that carries a bearer token: DRF authenticates it by the token or refuses it (401).

    Such a request never reaches the session: ``BearerTokenAuthentication`` comes first and
    either returns the token's user or raises, for any ``Authorization: Bearer ...`` header,
    so ``SessionAuthentication`` (and its CSRF check) never runs, and every path under
    ``/api/`` is a DRF view (the last one is the API's own 404).
    """
    if not request.path_info.startswith("/api/"):
        return False
    words = request.META.get("HTTP_AUTHORIZATION", "").split(None, 1)
    return bool(words) and words[0].lower() == "bearer"


class BrowserOnly:
    """Runs the wrapped middleware for every request except token-authenticated API requests.

    Sessions, CSRF, the session user and flash messages exist for the browser; for a request
    that carries a bearer token they only cost time (a session store built, a lazy user put
    into the audit context, cookies checked, message storage set up). The decision is taken
    once per request by ``RequestContextMiddleware`` (``request.token_api``). The wrapped
    middleware's ``process_view`` and ``process_exception`` hooks are kept for every other
    request, so CSRF protection and the dashboard's error pages are unchanged.
    """

    wrapped: str = ""

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.inner = import_string(self.wrapped)(get_response)
        for hook in ("process_view", "process_exception", "process_template_response"):
            inner_hook = getattr(self.inner, hook, None)
            if inner_hook is not None:
                setattr(self, hook, self._skipping(inner_hook))

    def __call__(self, request):
        if getattr(request, "token_api", False):
            return self.get_response(request)
        return self.inner(request)

    @staticmethod
    def _skipping(hook):
        def run(request, *args, **kwargs):
            if getattr(request, "token_api", False):
                return None
            return hook(request, *args, **kwargs)

        return run


class BrowserSessionMiddleware(BrowserOnly):
    """``SessionMiddleware``, except for token API requests."""

    wrapped = "django.contrib.sessions.middleware.SessionMiddleware"


class BrowserCsrfMiddleware(BrowserOnly):
    """``CsrfViewMiddleware``, except for token API requests (no cookie is their credential)."""

    wrapped = "django.middleware.csrf.CsrfViewMiddleware"


class BrowserAuthenticationMiddleware(BrowserOnly):
    """``AuthenticationMiddleware`` (the session's user), except for token API requests."""

    wrapped = "django.contrib.auth.middleware.AuthenticationMiddleware"


class BrowserPrincipalMiddleware(BrowserOnly):
    """The session user into the audit context, except for token API requests (their authenticator does it)."""

    wrapped = "apps.audit.middleware.PrincipalContextMiddleware"


class BrowserMessageMiddleware(BrowserOnly):
    """``MessageMiddleware``, except for token API requests."""

    wrapped = "django.contrib.messages.middleware.MessageMiddleware"


class BrowserDomainErrorMiddleware(BrowserOnly):
    """``DomainErrorMiddleware``, except for token API requests (DRF renders their errors)."""

    wrapped = "apps.core.middleware.DomainErrorMiddleware"
