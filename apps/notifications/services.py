"""Writes for webhooks: create, change, delete, rotate the secret, ping, redeliver; allow hosts.

Each runs in one transaction, checks ``notifications.manage`` on the webhook's team (allowed
hosts: ``notifications.allow_host``, global admins only), locks the row it changes, and writes
its audit event there: ``webhook.created``, ``webhook.updated``, ``webhook.deleted``,
``webhook.secret_rotated``, ``webhook.pinged``, ``webhook_delivery.redelivered``,
``webhook_host.allowed``, ``webhook_host.removed``. A secret is returned to the caller of
``webhook_create`` and ``webhook_secret_rotate`` only, never recorded.
"""

from __future__ import annotations

from uuid import UUID

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import Team
from apps.audit import services as audit
from apps.core.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from apps.core.principals import Principal, PrincipalKind
from apps.rbac import services as rbac

from . import deliveries, secrets, targets
from .choices import FINISHED, DeliveryState
from .events import EVENT_TYPES
from .models import AllowedWebhookHost, Webhook, WebhookDelivery


def _events(events) -> list[str]:
    if not isinstance(events, list | tuple) or not events:
        raise ValidationFailed(
            f"events: name at least one of {', '.join(EVENT_TYPES)}.", errors={"events": ["Choose at least one."]}
        )
    unknown = sorted({str(e) for e in events} - set(EVENT_TYPES))
    if unknown:
        raise ValidationFailed(
            f"events: unknown event type(s) {', '.join(unknown)}; choose from {', '.join(EVENT_TYPES)}.",
            errors={"events": [f"unknown: {', '.join(unknown)}"]},
        )
    return [e for e in EVENT_TYPES if e in set(events)]


def _url(url: str) -> str:
    """The URL as given, once the SSRF guard accepts it (``TargetRefused`` is a 400)."""
    url = (url or "").strip()
    if len(url) > 2000:
        raise ValidationFailed("url: at most 2000 characters.", errors={"url": ["Too long."]})
    try:
        targets.check(url, allowed=targets.allowed_hosts())
    except targets.ResolutionFailed as exc:
        raise ValidationFailed(f"url: {exc}.", errors={"url": [str(exc)]})
    return url


def _locked(actor: Principal, webhook_id: UUID | str, audit_action: str) -> Webhook:
    """The webhook, locked, once the actor may manage it (404 when they may not see it)."""
    try:
        webhook_id = UUID(str(webhook_id))
    except ValueError:
        raise NotFound("No webhook matches the given query.")
    webhook = (
        Webhook.objects.select_for_update(of=("self",))
        .select_related("owner_team")
        .filter(public_id=webhook_id)
        .first()
    )
    if webhook is None:
        raise NotFound("No webhook matches the given query.")
    rbac.require(actor, "notifications.manage", webhook, audit_action=audit_action)
    return webhook


@transaction.atomic
def webhook_create(
    *, actor: Principal, team: Team, url: str, events: list[str], description: str = "", active: bool = True
) -> tuple[Webhook, str]:
    """A new webhook for ``team`` and its signing secret (returned here only). Audited ``webhook.created``."""
    rbac.require(actor, "notifications.manage", team, audit_action="webhook.created")
    secret = secrets.generate()
    webhook = Webhook.objects.create(
        owner_team=team,
        url=_url(url),
        events=_events(events),
        description=(description or "")[:200],
        active=bool(active),
        secret_encrypted=secrets.encrypt(secret),
        created_by_id=actor.id if actor.kind == PrincipalKind.USER else actor.owner_user_id,
        created_by_name=actor.name[:255],
    )
    audit.record(action="webhook.created", actor=actor, target=webhook, related=team, after=webhook.audit_view())
    return webhook, secret


_EDITABLE = ("url", "events", "description", "active")


@transaction.atomic
def webhook_update(*, actor: Principal, webhook_id: UUID | str, **changes) -> Webhook:
    """Change a webhook's URL (checked again), events, description or active flag. Audited ``webhook.updated``."""
    webhook = _locked(actor, webhook_id, "webhook.updated")
    unknown = set(changes) - set(_EDITABLE)
    if unknown:
        raise ValidationFailed(f"Cannot change {', '.join(sorted(unknown))}.")
    before = webhook.audit_view()
    if "url" in changes:
        webhook.url = _url(changes["url"])
    if "events" in changes:
        webhook.events = _events(changes["events"])
    if "description" in changes:
        webhook.description = (changes["description"] or "")[:200]
    if "active" in changes:
        webhook.active = bool(changes["active"])
    after = webhook.audit_view()
    if after == before:
        return webhook
    webhook.save()
    changed = [k for k in after if after[k] != before[k]]
    audit.record(
        action="webhook.updated",
        actor=actor,
        target=webhook,
        related=webhook.owner_team,
        before={k: before[k] for k in changed},
        after={k: after[k] for k in changed},
    )
    return webhook


@transaction.atomic
def webhook_delete(*, actor: Principal, webhook_id: UUID | str) -> None:
    """Delete a webhook with its deliveries (pending ones are not sent). Audited ``webhook.deleted``."""
    webhook = _locked(actor, webhook_id, "webhook.deleted")
    audit.record(
        action="webhook.deleted",
        actor=actor,
        target=webhook,
        related=webhook.owner_team,
        before=webhook.audit_view(),
    )
    webhook.delete()


@transaction.atomic
def webhook_secret_rotate(*, actor: Principal, webhook_id: UUID | str) -> tuple[Webhook, str]:
    """Replace the signing secret at once and return the new one. Audited ``webhook.secret_rotated`` (without it).

    Deliveries not yet sent are signed with the new secret.
    """
    webhook = _locked(actor, webhook_id, "webhook.secret_rotated")
    secret = secrets.generate()
    webhook.secret_encrypted = secrets.encrypt(secret)
    webhook.secret_rotated_at = timezone.now()
    webhook.save(update_fields=["secret_encrypted", "secret_rotated_at", "updated_at"])
    audit.record(
        action="webhook.secret_rotated",
        actor=actor,
        target=webhook,
        related=webhook.owner_team,
        after={"rotated_at": webhook.secret_rotated_at.isoformat()},
    )
    return webhook, secret


@transaction.atomic
def webhook_ping(*, actor: Principal, webhook_id: UUID | str) -> WebhookDelivery:
    """Send a ``ping`` event to the webhook (whatever it subscribes to). Audited ``webhook.pinged``."""
    webhook = _locked(actor, webhook_id, "webhook.pinged")
    if not webhook.active:
        raise InvalidTransition("The webhook is disabled; enable it to send a ping.")
    delivery = deliveries.delivery_create(
        webhook=webhook,
        event=deliveries.PING,
        payload={"webhook": str(webhook.public_id), "team": webhook.owner_team.name, "sent_by": actor.name},
    )
    audit.record(
        action="webhook.pinged",
        actor=actor,
        target=webhook,
        related=webhook.owner_team,
        after={"delivery": str(delivery.public_id)},
    )
    return delivery


@transaction.atomic
def delivery_redeliver(*, actor: Principal, webhook_id: UUID | str, delivery_id: UUID | str) -> WebhookDelivery:
    """Send a finished delivery again, same id and body, with a fresh attempt budget.

    409 while it is still pending or being delivered. Audited ``webhook_delivery.redelivered``.
    """
    webhook = _locked(actor, webhook_id, "webhook_delivery.redelivered")
    try:
        delivery_id = UUID(str(delivery_id))
    except ValueError:
        raise NotFound("No delivery matches the given query.")
    delivery = WebhookDelivery.objects.select_for_update().filter(webhook=webhook, public_id=delivery_id).first()
    if delivery is None:
        raise NotFound("No delivery matches the given query.")
    if delivery.state not in FINISHED:
        raise InvalidTransition(f"The delivery is {delivery.state}; only a finished delivery is sent again.")
    before = {"state": delivery.state, "attempts": delivery.attempt_count}
    delivery.state = DeliveryState.PENDING
    delivery.round_attempts = 0
    delivery.finished_at = None
    delivery.next_attempt_at = timezone.now()
    delivery.job = deliveries.jobs.job_enqueue(
        kind=deliveries.DELIVER_JOB, target=delivery, params={"public_id": str(delivery.public_id)}, actor=actor
    )
    delivery.save()
    audit.record(
        action="webhook_delivery.redelivered",
        actor=actor,
        target=delivery,
        related=webhook,
        before=before,
        after={"state": delivery.state},
    )
    return delivery


# ---------------------------------------------------------------------------------------------
# Allowed hosts (global admins)


def _host(host: str) -> str:
    host = (host or "").strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or len(host) > 253 or any(c in host for c in "/@?# "):
        raise ValidationFailed(
            "host: a host name or IP address, without scheme, port or path.", errors={"host": ["Invalid."]}
        )
    return host


@transaction.atomic
def allowed_host_create(*, actor: Principal, host: str, allow_http: bool = False, note: str = "") -> AllowedWebhookHost:
    """Allow webhooks to target ``host`` whatever it resolves to (over http too if asked).

    Audited ``webhook_host.allowed``.
    """
    rbac.require(actor, "notifications.allow_host", audit_action="webhook_host.allowed")
    host = _host(host)
    try:
        with transaction.atomic():
            allowed = AllowedWebhookHost.objects.create(
                host=host, allow_http=bool(allow_http), note=(note or "")[:200], created_by_name=actor.name[:255]
            )
    except IntegrityError:
        raise Conflict(f"{host} is allowed already.")
    audit.record(
        action="webhook_host.allowed",
        actor=actor,
        target=allowed,
        after={"host": host, "allow_http": allowed.allow_http, "note": allowed.note},
    )
    return allowed


@transaction.atomic
def allowed_host_delete(*, actor: Principal, host_id: int) -> None:
    """Withdraw a host's allowance: later attempts to it are checked like any other.

    Audited ``webhook_host.removed``.
    """
    rbac.require(actor, "notifications.allow_host", audit_action="webhook_host.removed")
    allowed = AllowedWebhookHost.objects.select_for_update().filter(pk=host_id).first()
    if allowed is None:
        raise NotFound("No allowed host matches the given query.")
    audit.record(
        action="webhook_host.removed",
        actor=actor,
        target=allowed,
        before={"host": allowed.host, "allow_http": allowed.allow_http},
    )
    allowed.delete()
