"""How evidence reacts to other apps' events (subscribed in ``EvidenceConfig.ready()``).

A verified version gets its model's default evidence, asked for as its author. Idempotent:
an equal run already requested is reused, so a reaction that runs twice asks for nothing new.
"""

from __future__ import annotations

from apps.jobs import events

from . import services

SUBSCRIBER = "evidence"


def on_version_verified(event: events.Event, report) -> dict:
    """Request the model's default evidence for the version that was just verified."""
    runs = services.default_evidence_request(version_id=event.payload["version_id"])
    return {"requested": [str(run.public_id) for run in runs]}


def subscribe() -> None:
    events.subscribe("model_version.verified", on_version_verified, subscriber=SUBSCRIBER)
