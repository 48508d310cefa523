"""Governance events for outbound webhooks.

The public webhook event types below are what users subscribe a webhook to. They are fed by
the events other apps publish (``apps.jobs.events``): ``apps.notifications.subscribers`` maps
each published event to its webhook type and calls ``emit`` in its reaction job.
"""

from __future__ import annotations

# Event types a webhook may subscribe to.
EVENT_TYPES = (
    "release.requested",
    "release.approval_needed",
    "release.approved",
    "release.rejected",
    "evidence.completed",
    "evidence.failed",
    "policy.changed",
    "deployment.started",
    "deployment.step_completed",
    "deployment.paused",
    "deployment.succeeded",
    "deployment.halted",
    "deployment.rolled_back",
    "deployment.failed",
    "deployment.drift_detected",
    "report.generated",
)


def dashboard_url(path: str) -> str:
    """A dashboard link for a payload: ``ASSAY_PUBLIC_URL`` and ``path`` (the path alone when it is not set)."""
    from django.conf import settings

    return f"{settings.ASSAY_PUBLIC_URL.rstrip('/')}{path}"


def emit(*, event: str, team_id: int | None, payload: dict, event_id: str | None = None) -> None:
    """Queue ``event`` for the webhooks of ``team_id`` (None: every team's) that subscribe to it.

    Call inside a transaction: one ``WebhookDelivery`` row (and its job) per matching active
    webhook is written there, so a rollback drops the deliveries; the workers are woken after
    commit. ``payload`` must be JSON-serialisable (UUIDs, dates and decimals are turned into
    text); it becomes the body's ``data``. ``event_id``, the published event's id, makes a
    repeated call for the same event write nothing new.
    """
    if event not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event!r}")
    from .deliveries import deliveries_for_event

    deliveries_for_event(event=event, team_id=team_id, payload=payload, event_id=event_id)
