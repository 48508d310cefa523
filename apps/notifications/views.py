"""Dashboard page for webhooks: a team's webhooks with their recent deliveries, a create form that shows the
secret once, and buttons to ping, rotate the secret, enable/disable and delete.

Thin: every change goes through ``services`` and every read through ``selectors`` (rbac in both), so a
person sees only the teams whose webhooks they may see, and anything else is a 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from apps.accounts.principals import principal_for_user
from apps.core.errors import Conflict, ValidationFailed
from apps.rbac import services as rbac

from . import selectors, services
from .events import EVENT_TYPES


def _page(request, *, team_name: str = "", secret: str = "", created=None, form: dict | None = None, status=200):
    actor = principal_for_user(request.user)
    teams = list(selectors.teams_visible(actor=actor))
    if not teams:
        raise Http404("No webhooks you may see.")
    name = team_name or request.GET.get("team") or teams[0].name
    team = selectors.team_get(actor=actor, name=name)
    webhooks = list(selectors.webhook_list(actor=actor, team=team))
    recent = selectors.recent_deliveries(webhooks=webhooks)
    context = {
        "teams": teams,
        "team": team,
        "rows": [(w, recent[w.pk]) for w in webhooks],
        "can_manage": rbac.allows(actor, "notifications.manage", team),
        "event_types": EVENT_TYPES,
        "secret": secret,
        "created": created,
        "form": form or {"events": []},
    }
    response = render(request, "notifications/webhooks.html", context, status=status)
    if secret:
        response["Cache-Control"] = "no-store"
    return response


@login_required
@require_safe
def webhook_list(request):
    """A team's webhooks and their recent deliveries."""
    return _page(request)


def _back(team_name: str):
    return redirect(f"{reverse('notifications:webhook_list')}?team={team_name}")


@login_required
@require_POST
def webhook_create(request, team: str):
    """Create a webhook; the page that answers shows its secret, this once."""
    actor = principal_for_user(request.user)
    team_obj = selectors.team_get(actor=actor, name=team, permission="notifications.manage")
    form = {
        "url": request.POST.get("url", ""),
        "description": request.POST.get("description", ""),
        "events": request.POST.getlist("events"),
    }
    try:
        webhook, secret = services.webhook_create(actor=actor, team=team_obj, **form)
    except ValidationFailed as exc:
        messages.error(request, exc.detail)
        return _page(request, team_name=team, form=form, status=400)
    return _page(request, team_name=team, secret=secret, created=webhook)


@login_required
@require_POST
def webhook_action(request, webhook_id, action: str):
    """Ping, rotate the secret, enable, disable or delete one webhook, then show the team's page."""
    actor = principal_for_user(request.user)
    webhook = selectors.webhook_get(actor=actor, webhook_id=webhook_id)
    team = webhook.owner_team.name
    try:
        if action == "ping":
            services.webhook_ping(actor=actor, webhook_id=webhook_id)
            messages.success(request, "A ping is on its way; its delivery shows below.")
        elif action == "rotate":
            webhook, secret = services.webhook_secret_rotate(actor=actor, webhook_id=webhook_id)
            return _page(request, team_name=team, secret=secret, created=webhook)
        elif action in ("enable", "disable"):
            services.webhook_update(actor=actor, webhook_id=webhook_id, active=action == "enable")
            messages.success(request, f"Webhook {action}d.")
        elif action == "delete":
            services.webhook_delete(actor=actor, webhook_id=webhook_id)
            messages.success(request, "Webhook deleted.")
        else:
            raise Http404("No such action.")
    except (ValidationFailed, Conflict) as exc:
        messages.error(request, exc.detail)
    return _back(team)
