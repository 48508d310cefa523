"""Outbound webhooks: a team's endpoints, the deliveries of events to them, and every attempt at each."""

from __future__ import annotations

import uuid

from django.db import models

from apps.accounts.models import Team, User
from apps.core.models import TimestampedModel

from .choices import DeliveryState


class Webhook(TimestampedModel):
    """A team's HTTPS endpoint that receives the events it subscribes to, signed with its own secret.

    ``secret_encrypted`` holds the signing secret encrypted at rest (``apps.notifications.secrets``):
    the worker must read it back to sign, so it cannot be a hash. It is shown once, at creation
    and at each rotation, and never written to the audit trail or returned by a read.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner_team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="webhooks")
    url = models.CharField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list, help_text="Event types subscribed to (apps.notifications.events).")
    active = models.BooleanField(default=True)
    secret_encrypted = models.TextField()
    secret_rotated_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by_name = models.CharField(max_length=255, blank=True)

    RBAC_PATHS = {"team": "owner_team_id"}

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"webhook {self.url}"

    def audit_ref(self) -> tuple[str, str, str]:
        return ("webhook", str(self.public_id), self.url[:255])

    def rbac_scope(self) -> tuple[int | None, int | None]:
        return (self.owner_team_id, None)

    def audit_view(self) -> dict:
        """What the audit trail records of a webhook: never its secret."""
        return {
            "team": self.owner_team.name,
            "url": self.url,
            "events": list(self.events),
            "active": self.active,
            "description": self.description,
        }


class WebhookDelivery(TimestampedModel):
    """One event sent to one webhook: the exact body, its state and when it is next tried.

    ``public_id`` is the ``Assay-Delivery`` header and the body's ``id``: every attempt and a
    manual redelivery send the same id, so a receiver that processed it once can ignore the rest.
    ``round_attempts`` counts the attempts since the delivery was (re)opened, against
    ``ASSAY_WEBHOOK_MAX_ATTEMPTS``; ``attempt_count`` counts them all. ``job`` is the job that
    carries the current attempt; a pending delivery whose job is finished and whose
    ``next_attempt_at`` has come is given a new job by the dispatcher. ``event_id`` is the id of the
    published event (``apps.jobs.events``) the delivery was made for: a webhook gets at most one
    delivery per event, however often the reaction that writes it runs.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=64)
    body = models.TextField()
    state = models.CharField(max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    round_attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    event_id = models.UUIDField(null=True, blank=True, editable=False)

    RBAC_PATHS = {"team": "webhook__owner_team_id"}

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="webhook_delivery_due_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["webhook", "event_id"],
                condition=models.Q(event_id__isnull=False),
                name="webhook_delivery_once_per_event",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event} delivery {self.public_id} ({self.state})"

    def audit_ref(self) -> tuple[str, str, str]:
        return ("webhook_delivery", str(self.public_id), self.event)

    def rbac_scope(self) -> tuple[int | None, int | None]:
        return (self.webhook.owner_team_id, None)


class WebhookDeliveryAttempt(models.Model):
    """One HTTP request of a delivery: what came back (status, a bounded excerpt) or what went wrong.

    ``retry_in_seconds`` is the delay the backoff chose after it (None when no retry follows).
    """

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    address = models.CharField(max_length=64, blank=True, help_text="The IP address connected to.")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    error = models.CharField(max_length=500, blank=True)
    retry_in_seconds = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["delivery_id", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}"


class AllowedWebhookHost(TimestampedModel):
    """A host an admin allowed as a webhook target although it may resolve to a private address.

    Lifts the SSRF guard for exactly this host name (or IP literal), for every team; with
    ``allow_http`` plain ``http://`` is accepted for it too.
    """

    host = models.CharField(max_length=253, unique=True)
    allow_http = models.BooleanField(default=False)
    note = models.CharField(max_length=200, blank=True)
    created_by_name = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["host"]

    def __str__(self) -> str:
        return self.host

    def audit_ref(self) -> tuple[str, str, str]:
        return ("webhook_allowed_host", str(self.pk), self.host)
