"""Dashboard views for signing in and out and for a person's own API tokens. Thin: services decide."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from apps.core.errors import ValidationFailed

from . import selectors, services
from .forms import LoginForm, TokenCreateForm
from .principals import principal_for_user


def _safe_next(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return settings.LOGIN_REDIRECT_URL


def _lock_message(locked_until) -> str:
    minutes = max(1, int((locked_until - timezone.now()).total_seconds() // 60) + 1)
    return (
        "This account is locked after repeated failed sign-in attempts. "
        f"Try again in about {minutes} minute{'s' if minutes != 1 else ''}, or ask an administrator."
    )


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def login_view(request):
    """Sign in with lockout: ``services.login_attempt`` counts failures and audits every attempt.

    Too many attempts from this address or for this account: the page again, as a 429 with Retry-After.
    """
    next_url = _safe_next(request)
    if request.method == "GET" and request.user.is_authenticated:
        return redirect(next_url)
    form = LoginForm(request.POST or None)
    error = ""
    retry_after = None
    if request.method == "POST" and form.is_valid():
        username = form.cleaned_data["username"]
        try:
            user = services.login_attempt(username=username, password=form.cleaned_data["password"])
        except services.SignInThrottled as exc:
            user, error, retry_after = None, exc.detail, exc.retry_after
        else:
            if user is not None:
                auth_login(request, user)
                return redirect(next_url)
            locked_until = selectors.user_locked_until(username=username)
            error = _lock_message(locked_until) if locked_until else "The username or password is not correct."
    response = render(
        request,
        "accounts/login.html",
        {"form": form, "error": error, "next": next_url, "session_hours": settings.SESSION_COOKIE_AGE // 3600},
        status=429 if retry_after else 200,
    )
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response


@require_POST
def logout_view(request):
    """Sign out (POST only, so a link or an image cannot sign anyone out)."""
    if request.user.is_authenticated:
        services.user_logout(actor=principal_for_user(request.user))
    auth_logout(request)
    messages.info(request, "You have signed out.")
    return redirect(settings.LOGIN_URL)


def _tokens_page(request, *, form: TokenCreateForm, new_token: str = "", new_row=None):
    actor = principal_for_user(request.user)
    response = render(
        request,
        "accounts/tokens.html",
        {
            "tokens": selectors.token_list(actor=actor),
            "form": form,
            "new_token": new_token,
            "new_row": new_row,
        },
    )
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def tokens_view(request):
    """List the signed-in person's tokens; POST creates one and shows its secret this once."""
    if request.method == "GET":
        return _tokens_page(request, form=TokenCreateForm())
    form = TokenCreateForm(request.POST)
    if form.is_valid():
        try:
            row, raw = services.token_create(
                actor=principal_for_user(request.user),
                user=request.user,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                expires_in_days=form.cleaned_data["expires_in_days"],
            )
        except ValidationFailed as exc:
            form.add_error(None, exc.detail)
        else:
            # Rendered, not redirected: the secret must never be stored, not even in the session.
            return _tokens_page(request, form=TokenCreateForm(), new_token=raw, new_row=row)
    return _tokens_page(request, form=form)


@login_required
@require_POST
def token_revoke_view(request, token_id: str):
    """Revoke one of the signed-in person's tokens."""
    token = services.token_revoke(actor=principal_for_user(request.user), token_id=token_id)
    messages.success(request, f"Token “{token.name}” ({token.prefix}…) is revoked; it no longer authenticates.")
    return redirect("accounts:tokens")
