"""apps.jobs.events: publishing writes one durable job per subscriber in the causing transaction; workers run them."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from django.db import transaction

from apps.audit.models import AuditEvent
from apps.jobs import events
from apps.jobs.models import Job, JobStatus
from worker.runner import run_job

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
# An event no app subscribes to in production, free for the test subscribers below.
FREE = "release.expired"


@pytest.fixture
def subscribed():
    """subscribed(name, handler, subscriber) -> subscribes for this test only; the app's subscriptions come back."""
    saved = {name: dict(subs) for name, subs in events._subscriptions.items()}

    def add(name, handler, subscriber):
        events.subscribe(name, handler, subscriber=subscriber)

    yield add
    events._subscriptions.clear()
    events._subscriptions.update(saved)


def test_an_unknown_event_name_is_an_error_when_published_or_subscribed():
    with pytest.raises(events.UnknownEvent, match="release.teleported"):
        events.publish("release.teleported", payload={})
    with pytest.raises(events.UnknownEvent):
        events.subscribe("model.exploded", lambda event, report: None, subscriber="tests")
    assert not Job.objects.exists()


def test_every_event_has_a_one_line_meaning():
    for name, meaning in events.EVENTS.items():
        assert re.fullmatch(r"[a-z_]+\.[a-z_]+", name), name
        assert meaning.strip() and "\n" not in meaning, name


def test_a_publish_with_no_subscriber_writes_nothing():
    assert events.subscribers(FREE) == []
    assert events.publish(FREE, payload={"release_id": 1}) == []
    assert not Job.objects.exists()


def test_a_publish_writes_one_queued_job_per_subscriber_and_no_audit_event(subscribed):
    subscribed(FREE, lambda event, report: None, "alpha")
    subscribed(FREE, lambda event, report: None, "beta")
    with transaction.atomic():
        written = events.publish(FREE, payload={"release_id": 7, "when": "now"})
    assert [j.params["subscriber"] for j in written] == ["alpha", "beta"]
    rows = list(Job.objects.order_by("pk"))
    assert [(j.kind, j.status) for j in rows] == [("event:release.expired", JobStatus.QUEUED)] * 2
    assert rows[0].params["payload"] == rows[1].params["payload"] == {"release_id": 7, "when": "now"}
    assert rows[0].params["event_id"] == rows[1].params["event_id"]  # one event, two reactions
    assert not AuditEvent.objects.exists()


def test_a_rolled_back_change_takes_its_reactions_with_it(subscribed):
    subscribed(FREE, lambda event, report: None, "alpha")
    with pytest.raises(RuntimeError), transaction.atomic():
        events.publish(FREE, payload={"release_id": 7})
        raise RuntimeError("the causing service failed after publishing")
    assert not Job.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_publish_outside_a_transaction_is_refused(subscribed):
    subscribed(FREE, lambda event, report: None, "alpha")
    with pytest.raises(RuntimeError, match="inside the transaction"):
        events.publish(FREE, payload={"release_id": 7})
    assert not Job.objects.exists()


def test_a_payload_must_hold_ids_and_primitives(subscribed, team):
    subscribed(FREE, lambda event, report: None, "alpha")
    with pytest.raises(TypeError, match="ids and primitives"):
        events.publish(FREE, payload={"team": team})
    assert not Job.objects.exists()


def test_a_worker_runs_the_handler_with_the_event_and_records_its_result(subscribed):
    seen = []

    def handler(event, report):
        report(50, "half way")
        seen.append(event)
        return {"handled": event.payload["release_id"]}

    subscribed(FREE, handler, "alpha")
    (job,) = events.publish(FREE, payload={"release_id": 7})
    assert run_job(job.pk) == "succeeded"
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.result == {"handled": 7}
    (event,) = seen
    assert (event.name, event.id, event.payload) == (FREE, job.params["event_id"], {"release_id": 7})
    assert [e.action for e in AuditEvent.objects.filter(target_type="job").order_by("id")] == [
        "job.started",
        "job.succeeded",
    ]


def test_a_failing_reaction_fails_its_job_visibly_and_leaves_the_others_alone(subscribed):
    def broken(event, report):
        raise ValueError("the release vanished")

    subscribed(FREE, broken, "alpha")
    subscribed(FREE, lambda event, report: "fine", "beta")
    first, second = events.publish(FREE, payload={"release_id": 7})
    assert run_job(first.pk) == "failed"
    assert run_job(second.pk) == "succeeded"
    first.refresh_from_db()
    assert first.status == JobStatus.FAILED and "the release vanished" in first.error
    failed = AuditEvent.objects.get(action="job.failed", target_id=str(first.pk))
    assert "the release vanished" in failed.reason


def test_a_job_for_a_subscriber_that_went_away_fails_with_the_reason(subscribed):
    subscribed(FREE, lambda event, report: None, "alpha")
    (job,) = events.publish(FREE, payload={})
    events._subscriptions[FREE].pop("alpha")
    assert run_job(job.pk) == "failed"
    job.refresh_from_db()
    assert "nobody named 'alpha' subscribes" in job.error


def test_the_apps_subscribe_their_reactions():
    assert events.subscribers("model_version.verified") == ["evidence", "releases"]
    assert events.subscribers("evidence_run.succeeded") == ["releases", "notifications"]
    assert events.subscribers("evidence_finding.reviewed") == ["releases"]
    assert events.subscribers("policy.changed") == ["releases", "notifications"]
    assert events.subscribers("model.updated") == ["releases"]
    assert events.subscribers("release.approved") == ["releases", "notifications"]
    assert events.subscribers("environment.changed") == ["releases"]
    assert events.subscribers("gate_decisions.stale") == ["releases"]


def _published_names() -> set[str]:
    """Every event name the apps' code publishes as a literal (``events.publish("...")``, ``_emit("...")``).

    ``_close`` publishes its audit action (``release.rejected``, ``.expired``, ``.cancelled``): those are checked
    by the releases tests."""
    names = set()
    for path in (ROOT / "apps").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("publish", "_emit", "_publish_finished"):
                names |= {a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)}
    return names


def test_every_name_the_apps_publish_is_registered():
    published = _published_names()
    assert {"model_version.verified", "model.updated", "evidence_run.succeeded", "policy.changed"} <= published
    assert published <= set(events.EVENTS)
