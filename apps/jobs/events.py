"""Named events: how one app reacts to another's change without importing it, and without losing it.

A service publishes an event inside the transaction that makes the change::

    events.publish("evidence_run.succeeded", payload={"run_id": run.pk, ...}, target=run)

``publish`` writes one queued job row per subscriber, in that same transaction (an outbox on
the job table, which is already the queue): a rollback drops the reactions with the change,
and a commit makes them as durable as the change itself. The workers are woken after commit
by the jobs doorbell, as for any job. A worker killed before or during a reaction delays it
(the job stays queued, or its lease expires and the sweeper re-queues it) but never loses it.

A reacting app subscribes in its ``AppConfig.ready()``::

    events.subscribe("evidence_run.succeeded", on_evidence, subscriber="releases")

Each subscriber's job has the kind ``event:<name>`` and carries ``{"event", "event_id",
"subscriber", "payload"}`` in its params, so the job table shows which event each reaction
came from. A worker calls the handler with an ``Event`` and a progress reporter (``report(percent,
message)``, which renews the job's lease). Delivery is at least once: a job whose worker died
runs again, so a handler must be idempotent (a state guard under a row lock, or a unique key
such as ``event.id``), which makes the *effect* happen once.

Publishing writes no audit event of its own: the causing service records its change, and the
job's run is audited as every job's is (``job.started``, ``job.succeeded`` / ``job.failed``).

Lower apps (jobs, registry, evidence, policies) publish; they never import the apps that
react (releases, notifications), not even inside a function. ``EVENTS`` below is the list of
every event name with its meaning; publishing or subscribing to any other name is an error.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from apps.core.principals import Principal

from . import services as jobs
from .models import Job

KIND_PREFIX = "event:"

# Every event a service may publish, with its meaning. The payload carries ids and primitives only.
EVENTS: dict[str, str] = {
    "model_version.verified": "a version's artifact was verified and the version became ready",
    "model.updated": "a registered model's descriptive or policy-relevant fields changed",
    "evidence_run.succeeded": "an evidence run finished with its report (the version's or dataset's evidence grew)",
    "evidence_run.failed": "an evidence run failed and gives no report",
    "evidence_finding.reviewed": "a reviewer judged a finding of a PII scan (what policies read may have changed)",
    "policy.changed": "a policy pack, pack version or binding was created or removed",
    "release.requested": "a release was requested for a version in an environment",
    "release.approval_needed": "a release request waits for people's approvals",
    "release.approved": "a release request was approved (quorum met, or a break-glass release)",
    "release.rejected": "an approver rejected a release request",
    "release.expired": "an open release request passed its time to live",
    "release.cancelled": "a release request was withdrawn",
    "release.reset": "a live release request's decision changed; it is pending again and its approvals void",
    "environment.changed": "an environment was created or changed (every version's gate there must be judged)",
    "gate_decisions.stale": "a batch of versions' stored gate decisions must be judged again (ids in the payload)",
    "deployment.started": "a rollout of an approved version onto a target started",
    "deployment.step_completed": "a rollout step passed its health analysis (the figures in the payload)",
    "deployment.paused": "a rollout waits for a person to resume it (a step asked for it, or too little traffic)",
    "deployment.succeeded": "a rollout finished: the new version serves all traffic on its target",
    "deployment.halted": "a person halted a rollout (live traffic back on the stable version)",
    "deployment.rolled_back": "a rollout was rolled back (by a person or on its own): the stable version serves",
    "deployment.failed": "a rollout failed: governance refused the apply, or the target refused it",
    "deployment.drift_detected": "a target runs something that does not match an approved, current release",
    "report.generated": "a report and its files are ready (a scheduled one is in the report store too)",
}


class UnknownEvent(ValueError):
    """An event name that is not in ``EVENTS`` (a programming error, caught at publish or subscribe)."""


@dataclass(frozen=True)
class Event:
    """What a subscriber's handler gets: the event's name, its id (the same for every subscriber) and payload."""

    name: str
    id: str
    payload: dict


Handler = Callable[[Event, Callable[[int, str], None]], Any]

# name -> subscriber -> handler; filled by the subscribing apps' ready(), read by publish and the worker.
_subscriptions: dict[str, dict[str, Handler]] = {}


def _known(name: str) -> None:
    if name not in EVENTS:
        raise UnknownEvent(f"unknown event {name!r}: add it to apps.jobs.events.EVENTS with its meaning")


def job_kind(name: str) -> str:
    """The kind of the jobs that carry ``name`` to its subscribers (``event:<name>``)."""
    return f"{KIND_PREFIX}{name}"


def subscribe(name: str, handler: Handler, *, subscriber: str) -> None:
    """Run ``handler(event, report)`` in a worker for every ``name`` published from now on.

    Call from the reacting app's ``AppConfig.ready()``. ``subscriber`` names the reaction (usually
    the app's label); it is stored in each job, so it must stay stable across releases while jobs
    for it may be queued. Subscribing the same subscriber twice replaces its handler.
    """
    _known(name)
    if not subscriber:
        raise ValueError("a subscription needs a subscriber name")
    _subscriptions.setdefault(name, {})[subscriber] = handler


def subscribers(name: str) -> list[str]:
    """The subscribers of ``name``, in the order they subscribed."""
    _known(name)
    return list(_subscriptions.get(name, {}))


def _check_payload(name: str, payload: dict) -> dict:
    """The payload as JSON will store it; a value JSON cannot hold (a model instance, a set) is refused."""
    if not isinstance(payload, dict):
        raise TypeError(f"event {name}: the payload must be a dict")
    try:
        return json.loads(json.dumps(payload, cls=DjangoJSONEncoder))
    except TypeError as exc:
        raise TypeError(f"event {name}: the payload must hold ids and primitives only ({exc})") from None


def publish(name: str, *, payload: dict, target: Any = None, actor: Principal | None = None) -> list[Job]:
    """Queue ``name`` for each of its subscribers, in the caller's transaction; the job rows written.

    Call inside the causing service's transaction, after its audit event. ``payload`` holds ids and
    primitives (UUIDs, dates and decimals become text); ``target`` (a model instance or an audit
    reference) is what the jobs are about, for the job table; ``actor`` (default: the current audit
    context's principal) is whom the reactions' audit events name as the origin. A name nobody subscribes to writes
    nothing; an unknown name raises ``UnknownEvent``, and so does a publish outside a transaction
    (``RuntimeError``: its reactions would not commit or roll back with the change).
    """
    _known(name)
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError(f"publish {name!r} inside the transaction of the change that causes it")
    payload = _check_payload(name, payload)
    event_id = str(uuid.uuid4())
    return [
        jobs.job_enqueue(
            kind=job_kind(name),
            target=target,
            params={"event": name, "event_id": event_id, "subscriber": subscriber, "payload": payload},
            actor=actor,
        )
        for subscriber in _subscriptions.get(name, {})
    ]


def deliver(job: Job, report: Callable[[int, str], None]) -> Any:
    """Run the handler that a subscriber job names (the worker's side of ``publish``); its result.

    A job for a subscriber that no longer exists fails with that reason; a handler's exception
    fails the job as any job's would.
    """
    params = job.params
    name, subscriber = params["event"], params["subscriber"]
    handler = _subscriptions.get(name, {}).get(subscriber)
    if handler is None:
        raise LookupError(f"nobody named {subscriber!r} subscribes to {name!r} any more")
    return handler(Event(name=name, id=params["event_id"], payload=params["payload"]), report)
