"""Request context for the audit trail: request id, client address, source and principal."""

from __future__ import annotations

from django.conf import settings

from apps.core import request_cache

from . import context


def client_address(request) -> str:
    """The client's address; X-Forwarded-For is believed only with ``ASSAY_TRUST_X_FORWARDED_FOR``
    (behind one reverse proxy), and then only its last entry: the one the proxy appended. Earlier
    entries are whatever the client sent, and would let it pick its own address."""
    if getattr(settings, "ASSAY_TRUST_X_FORWARDED_FOR", False):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded.strip():
            return forwarded.split(",")[-1].strip()[:64]
    return (request.META.get("REMOTE_ADDR") or "")[:64]


def _sent_to_sign_in(request, response) -> bool:
    """A change (not GET/HEAD/OPTIONS) that ``login_required`` answered with a redirect to the sign-in page."""
    if request.method in ("GET", "HEAD", "OPTIONS") or response.status_code != 302:
        return False
    return response.get("Location", "").startswith(f"{settings.LOGIN_URL}?next=")


class RequestContextMiddleware:
    """Give every request an id (kept from X-Request-ID when sane) and return it as X-Request-ID.

    Opens the request's unit of work (``apps.core.request_cache``) and closes it when the
    response is ready, so nothing remembered for one request is seen by the next.
    A dashboard change attempted without a session (a POST sent to sign in) is audited like
    the API's 401s: ``auth.rejected``, at most once per client address per window.

    Also marks a bearer-token API request (``request.token_api``), for which the browser's
    middleware (sessions, CSRF, the session user, messages) stands aside.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        from apps.core.middleware import is_token_api_request

        request_id = context.clean_request_id(request.META.get("HTTP_X_REQUEST_ID"))
        request.request_id = request_id
        request.client_ip = client_address(request)  # what rate limits count by
        request.token_api = is_token_api_request(request)  # the browser's middleware stands aside
        source = "api" if request.path.startswith("/api/") else "web"
        token = context.set_context(
            context.AuditContext(source=source, request_id=request_id, client_ip=request.client_ip)
        )
        unit = request_cache.begin()  # what this request remembers (grants) dies with it
        try:
            response = self.get_response(request)
            if source == "web" and _sent_to_sign_in(request, response):
                from . import services

                services.record_unauthenticated(request=request, reason="sign-in required for a change")
        finally:
            request_cache.end(unit)
            context._current.reset(token)
        response["X-Request-ID"] = request_id
        return response


class PrincipalContextMiddleware:
    """Put the session user into the audit context (API token users are set by their authenticator)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            from apps.accounts.principals import principal_for_user

            context.update(principal=principal_for_user(user))
        return self.get_response(request)
