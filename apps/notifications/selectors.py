"""Reads for webhooks, filtered by rbac: a team's webhooks and deliveries are visible with ``notifications.view``."""

from __future__ import annotations

from uuid import UUID

from django.db.models import Prefetch, QuerySet

from apps.accounts.models import Team
from apps.core.errors import NotFound
from apps.core.principals import Principal
from apps.rbac import services as rbac

from .models import AllowedWebhookHost, Webhook, WebhookDelivery, WebhookDeliveryAttempt


def team_get(*, actor: Principal, name: str, permission: str = "notifications.view") -> Team:
    """A team whose webhooks the actor may see (or, with ``permission``, manage); 404 when hidden (audited)."""
    team = Team.objects.filter(name=name).first()
    if team is None:
        raise NotFound("No team matches the given query.")
    audit_action = "webhook.created" if permission == "notifications.manage" else "webhook.denied"
    rbac.require(actor, permission, team, audit_action=audit_action)
    return team


def teams_visible(*, actor: Principal) -> QuerySet[Team]:
    """Teams whose webhooks the actor may see, by name."""
    ids = rbac.teams_with(actor, "notifications.view")
    teams = Team.objects.order_by("name")
    return teams if ids is None else teams.filter(pk__in=ids)


def _webhooks() -> QuerySet[Webhook]:
    return Webhook.objects.select_related("owner_team", "created_by")


def webhook_list(*, actor: Principal, team: Team) -> QuerySet[Webhook]:
    """A team's webhooks the actor may see, newest first."""
    return rbac.restrict(actor, _webhooks().filter(owner_team=team), "notifications.view").order_by(
        "-created_at", "-id"
    )


def webhook_get(*, actor: Principal, webhook_id: UUID | str) -> Webhook:
    """One webhook by its public id; 404 when missing or out of scope."""
    try:
        webhook_id = UUID(str(webhook_id))
    except ValueError:
        raise NotFound("No webhook matches the given query.")
    return rbac.get_visible(actor, _webhooks(), "notifications.view", public_id=webhook_id)


def delivery_list(*, webhook: Webhook, limit: int | None = None) -> QuerySet[WebhookDelivery]:
    """A (visible) webhook's deliveries, newest first, with their attempts in order."""
    qs = (
        WebhookDelivery.objects.filter(webhook=webhook)
        .select_related("webhook", "webhook__owner_team")
        .prefetch_related(Prefetch("attempts", queryset=WebhookDeliveryAttempt.objects.order_by("number")))
        .order_by("-created_at", "-id")
    )
    return qs[:limit] if limit else qs


def recent_deliveries(*, webhooks: list[Webhook], per_webhook: int = 10) -> dict[int, list[WebhookDelivery]]:
    """The newest deliveries of each webhook (for the dashboard), in one query."""
    found: dict[int, list[WebhookDelivery]] = {w.pk: [] for w in webhooks}
    rows = WebhookDelivery.objects.filter(webhook__in=webhooks).order_by("-created_at", "-id")[: 50 * len(webhooks)]
    for delivery in rows:
        bucket = found[delivery.webhook_id]
        if len(bucket) < per_webhook:
            bucket.append(delivery)
    return found


def allowed_host_list(*, actor: Principal) -> QuerySet[AllowedWebhookHost]:
    """Every allowed host; for those who see webhooks globally (admins, auditors)."""
    rbac.require(actor, "notifications.view", audit_action="webhook_host.denied")
    return AllowedWebhookHost.objects.order_by("host")
