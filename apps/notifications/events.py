"""Governance events for outbound webhooks.

``emit`` is called by services inside their transaction; the notifications
app turns it into signed deliveries after commit.
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
)


def dashboard_url(path: str) -> str:
    """A dashboard link for a payload: ``ASSAY_PUBLIC_URL`` and ``path`` (the path alone when it is not set)."""
    from django.conf import settings

    return f"{settings.ASSAY_PUBLIC_URL.rstrip('/')}{path}"


def emit(*, event: str, team_id: int | None, payload: dict) -> None:
    """Queue ``event`` for the webhooks of ``team_id`` (None: every team's) that subscribe to it.

    Call inside the writer's transaction: one ``WebhookDelivery`` row (and its job) per matching
    active webhook is written there, so a rollback drops the deliveries with the change; the
    workers are woken after commit. ``payload`` must be JSON-serialisable (UUIDs, dates and
    decimals are turned into text); it becomes the body's ``data``.
    """
    if event not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event!r}")
    from .deliveries import deliveries_for_event

    deliveries_for_event(event=event, team_id=team_id, payload=payload)
