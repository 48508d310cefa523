"""Webhooks are one subscriber: published events become deliveries to the teams' webhooks.

``NotificationsConfig.ready()`` subscribes to every published event that has a public
webhook type (``WEBHOOK_TYPES``). The reaction job writes one delivery per matching webhook,
in one transaction, marked with the event's id: run twice (its worker died after the commit),
it finds the deliveries there and writes none, so each webhook gets each event exactly once.
Signing, retries and the SSRF guard are the deliveries' own (``apps.notifications.deliveries``).
"""

from __future__ import annotations

from django.db import transaction
from django.urls import reverse

from apps.jobs import events

from . import events as webhooks

SUBSCRIBER = "notifications"

# published event -> the public webhook event type users subscribe to (apps.notifications.events)
WEBHOOK_TYPES = {
    "release.requested": "release.requested",
    "release.approval_needed": "release.approval_needed",
    "release.approved": "release.approved",
    "release.rejected": "release.rejected",
    "evidence_run.succeeded": "evidence.completed",
    "evidence_run.failed": "evidence.failed",
    "policy.changed": "policy.changed",
    "report.generated": "report.generated",
    **{
        f"deployment.{name}": f"deployment.{name}"
        for name in (
            "started",
            "step_completed",
            "paused",
            "succeeded",
            "halted",
            "rolled_back",
            "failed",
            "drift_detected",
        )
    },
}
# the ids a published payload carries for subscribers, which a webhook body does not repeat
_INTERNAL = ("team_id", "release_id", "run_id", "version_id", "dataset_id", "deployment_id", "report_id")


def webhook_data(name: str, payload: dict) -> dict:
    """The body's ``data`` for published event ``name``: the payload as users have always received it."""
    data = {key: value for key, value in payload.items() if key not in _INTERNAL}
    if name.startswith("evidence_run."):
        data["url"] = webhooks.dashboard_url(reverse("evidence:run_detail", args=[payload["run"]]))
    if name == "report.generated":
        data["url"] = webhooks.dashboard_url(reverse("reports:report_detail", args=[payload["report"]]))
    return data


def on_event(event: events.Event, report) -> dict:
    """Write the deliveries of one published event (none twice: see the module's docstring)."""
    webhook_type = WEBHOOK_TYPES[event.name]
    with transaction.atomic():
        webhooks.emit(
            event=webhook_type,
            team_id=event.payload.get("team_id"),
            payload=webhook_data(event.name, event.payload),
            event_id=event.id,
        )
    return {"webhook_event": webhook_type}


def subscribe() -> None:
    for name in WEBHOOK_TYPES:
        events.subscribe(name, on_event, subscriber=SUBSCRIBER)
