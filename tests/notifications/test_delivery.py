"""Delivery to a real HTTP receiver: signing, retries with backoff, Retry-After, no retry on 4xx, dead workers."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.jobs import services as jobs
from apps.jobs.models import Job
from apps.notifications import deliveries, services
from apps.notifications.events import emit
from apps.notifications.models import AllowedWebhookHost, WebhookDelivery

pytestmark = pytest.mark.django_db

TOLERANCE = 300  # seconds, as the verification snippet in docs/webhooks.md uses


def verify(secret: str, headers: dict, body: bytes) -> bool:
    """What a receiver does (the snippet in docs/webhooks.md): recompute the HMAC over the raw body, check the age."""
    parts = dict(item.split("=", 1) for item in headers["Assay-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(parts["t"])) <= TOLERANCE
    return fresh and hmac.compare_digest(expected, parts["v1"])


def emitted(team, event="release.approved", payload=None) -> WebhookDelivery:
    with transaction.atomic():
        emit(event=event, team_id=team.pk, payload=payload or {"release": "r-1"})
    return WebhookDelivery.objects.get()


def test_an_event_reaches_the_receiver_signed(hook, team, receiver, deliver, audit_mark):
    # given a webhook of the credit team and an event for that team
    webhook, secret = hook
    delivery = emitted(team, payload={"release": "r-1", "environment": "production"})
    mark = audit_mark()
    # when a worker runs the delivery's job
    delivery = deliver(delivery)
    # then the receiver got one POST whose signature it can check with the secret shown at creation
    assert len(receiver.received) == 1
    got = receiver.received[0]
    assert got.path == "/hooks/assay"
    assert verify(secret, got.headers, got.body)
    assert not verify(secret, got.headers, got.body + b" ")
    assert not verify("whsec_other", got.headers, got.body)
    assert got.headers["Assay-Event"] == "release.approved"
    assert got.headers["Assay-Delivery"] == str(delivery.public_id)
    assert got.headers["Assay-Signature"].startswith(f"t={got.headers['Assay-Timestamp']},v1=")
    assert got.json["id"] == str(delivery.public_id)
    assert got.json["event"] == "release.approved"
    assert got.json["data"] == {"release": "r-1", "environment": "production"}
    assert got.json["created_at"]
    # and the delivery succeeded with one attempt recorded, its outcome audited
    assert delivery.state == "succeeded"
    (attempt,) = delivery.attempts.all()
    assert (attempt.number, attempt.status_code, attempt.response_excerpt) == (1, 200, "ok")
    assert attempt.address == "127.0.0.1"
    assert attempt.retry_in_seconds is None
    (event,) = mark.new(action="webhook_delivery.succeeded")
    assert event.actor_name == "webhook-worker" and event.target_id == str(delivery.public_id)


def test_two_500s_then_200_makes_three_attempts_with_exponential_backoff(hook, team, receiver, deliver, audit_mark):
    # given a receiver that fails twice
    receiver.answer((500, {}, "boom"), (502, {}, "bad gateway"))
    delivery = emitted(team)
    # when the first attempt runs
    first_try = timezone.now()
    delivery = deliver(delivery)
    # then it waits BASE (30 s) before the second attempt, and nothing is due before then
    assert delivery.state == "pending"
    assert delivery.next_attempt_at - first_try >= timedelta(seconds=30)
    assert delivery.next_attempt_at - timezone.now() <= timedelta(seconds=30)
    assert deliveries.deliveries_dispatch_due(now=delivery.next_attempt_at - timedelta(seconds=1)) == 0
    # when the clock reaches it, the dispatcher gives it a job, and the second attempt fails again
    assert deliveries.deliveries_dispatch_due(now=delivery.next_attempt_at) == 1
    delivery = deliver(delivery)
    assert delivery.state == "pending"
    # then the third attempt comes 2 * BASE later and succeeds
    assert deliveries.deliveries_dispatch_due(now=delivery.next_attempt_at) == 1
    delivery = deliver(delivery)
    assert delivery.state == "succeeded"
    attempts = list(delivery.attempts.order_by("number"))
    assert [a.status_code for a in attempts] == [500, 502, 200]
    assert [a.retry_in_seconds for a in attempts] == [30.0, 60.0, None]
    assert [a.response_excerpt for a in attempts] == ["boom", "bad gateway", "ok"]
    # and the receiver saw the same delivery id and body three times (it can deduplicate)
    assert len({r.headers["Assay-Delivery"] for r in receiver.received}) == 1
    assert len({r.body for r in receiver.received}) == 1
    outcomes = AuditEvent.objects.filter(target_id=str(delivery.public_id), action__startswith="webhook_delivery.")
    assert [e.action for e in outcomes] == ["webhook_delivery.succeeded"]


def test_backoff_grows_exponentially_up_to_the_cap_with_bounded_jitter(settings):
    settings.ASSAY_WEBHOOK_RETRY_JITTER = 0.2
    settings.ASSAY_WEBHOOK_RETRY_MAX_DELAY_SECONDS = 100
    # lowest and highest draws of the jitter factor
    assert deliveries.backoff_delay(1, rng=lambda: 0.0) == pytest.approx(24.0)
    assert deliveries.backoff_delay(1, rng=lambda: 1.0) == pytest.approx(36.0)
    assert deliveries.backoff_delay(2, rng=lambda: 0.5) == pytest.approx(60.0)
    assert deliveries.backoff_delay(3, rng=lambda: 0.5) == pytest.approx(100.0)  # 120 capped at 100
    assert deliveries.backoff_delay(9, rng=lambda: 1.0) == pytest.approx(120.0)


def test_a_400_is_not_retried(hook, team, receiver, deliver, audit_mark):
    # given a receiver that refuses the request
    receiver.answer((400, {}, "bad signature"))
    delivery = emitted(team)
    mark = audit_mark()
    # when
    delivery = deliver(delivery)
    # then one attempt, the delivery failed, and nothing is due again
    assert delivery.state == "failed"
    assert delivery.attempts.count() == 1
    assert delivery.last_status_code == 400
    assert deliveries.deliveries_dispatch_due(now=timezone.now() + timedelta(days=1)) == 0
    (event,) = mark.new(action="webhook_delivery.failed")
    assert event.outcome == "failed" and "HTTP 400" in event.reason


def test_a_redirect_is_not_followed(hook, team, receiver, deliver):
    receiver.answer((302, {"Location": "http://169.254.169.254/latest/meta-data/"}, ""))
    delivery = deliver(emitted(team))
    assert delivery.state == "failed"
    assert "redirects are not followed" in delivery.last_error
    assert len(receiver.received) == 1


def test_retry_after_in_seconds_is_respected_on_429(hook, team, receiver, deliver):
    receiver.answer((429, {"Retry-After": "120"}, "slow down"))
    delivery = deliver(emitted(team))
    assert delivery.state == "pending"
    (attempt,) = delivery.attempts.all()
    assert attempt.retry_in_seconds == 120.0


def test_retry_after_as_a_date_is_respected_on_503(hook, team, receiver, deliver):
    when = timezone.now() + timedelta(seconds=600)
    receiver.answer((503, {"Retry-After": when.strftime("%a, %d %b %Y %H:%M:%S GMT")}, "maintenance"))
    delivery = deliver(emitted(team))
    (attempt,) = delivery.attempts.all()
    assert 590 <= attempt.retry_in_seconds <= 600


def test_a_receiver_that_never_answers_well_is_given_up_after_max_attempts(
    hook, team, receiver, deliver, settings, audit_mark
):
    settings.ASSAY_WEBHOOK_MAX_ATTEMPTS = 2
    receiver.answer((500, {}, "1"), (500, {}, "2"), (500, {}, "3"))
    delivery = deliver(emitted(team))
    deliveries.deliveries_dispatch_due(now=delivery.next_attempt_at)
    mark = audit_mark()
    delivery = deliver(delivery)
    assert delivery.state == "failed"
    assert delivery.attempts.count() == 2
    assert delivery.last_error.startswith("gave up after 2 attempt(s)")
    assert [e.action for e in mark.new() if e.action.startswith("webhook")] == ["webhook_delivery.failed"]


def test_a_connection_refused_is_retried(hook, team, deliver):
    # given a webhook whose port nobody listens on any more
    webhook, _ = hook
    webhook.url = "http://127.0.0.1:1/closed"
    webhook.save()
    # when
    delivery = deliver(emitted(team))
    # then
    assert delivery.state == "pending"
    (attempt,) = delivery.attempts.all()
    assert attempt.status_code is None and "could not connect" in attempt.error
    assert attempt.retry_in_seconds == 30.0


def test_without_the_allowance_the_receiver_is_refused_at_delivery(hook, team, receiver, deliver):
    # given the admin withdrew the allowance after the webhook was created
    AllowedWebhookHost.objects.all().delete()
    # when
    delivery = deliver(emitted(team))
    # then nothing was sent and the delivery failed without retry
    assert receiver.received == []
    assert delivery.state == "failed"
    assert delivery.last_error.startswith("refused:")


def test_a_rollback_drops_the_deliveries(hook, team):
    # when the writer's transaction rolls back after emitting
    with pytest.raises(RuntimeError), transaction.atomic():
        emit(event="release.approved", team_id=team.pk, payload={})
        assert WebhookDelivery.objects.count() == 1
        raise RuntimeError("the change failed")
    # then neither the delivery nor its job exists
    assert WebhookDelivery.objects.count() == 0
    assert not Job.objects.filter(kind=deliveries.DELIVER_JOB).exists()


def test_only_active_subscribed_webhooks_of_the_team_get_a_delivery(
    hook, team, other_team, officer_principal, admin_principal, receiver
):
    # given another credit webhook not subscribed to the event, a disabled one, and one of another team
    services.webhook_create(actor=officer_principal, team=team, url=receiver.url, events=["policy.changed"])
    off, _ = services.webhook_create(actor=officer_principal, team=team, url=receiver.url, events=["release.approved"])
    services.webhook_update(actor=officer_principal, webhook_id=off.public_id, active=False)
    services.webhook_create(actor=admin_principal, team=other_team, url=receiver.url, events=["release.approved"])
    # when an event for the credit team is emitted
    with transaction.atomic():
        emit(event="release.approved", team_id=team.pk, payload={})
    # then only the first webhook gets it; an event for every team reaches the other team's too
    assert list(WebhookDelivery.objects.values_list("webhook_id", flat=True)) == [hook[0].pk]
    with transaction.atomic():
        emit(event="release.approved", team_id=None, payload={})
    assert WebhookDelivery.objects.count() == 3


def test_an_unknown_event_type_is_refused(team):
    with pytest.raises(ValueError):
        emit(event="release.exploded", team_id=team.pk, payload={})


def test_a_worker_killed_mid_attempt_does_not_lose_the_delivery(hook, team, receiver, run, settings):
    # given a worker that claimed the delivery's job, began the attempt, and died
    delivery = emitted(team)
    claim = jobs.job_claim(delivery.job_id)
    assert deliveries.delivery_begin(delivery_id=str(delivery.public_id)) is not None
    # when its lease expires and the sweeper hands the job on
    Job.objects.filter(pk=claim.job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert delivery.job_id in jobs.job_sweep()
    assert run(delivery.job_id) == "succeeded"
    # then the delivery is sent (once, here) and succeeds as attempt 2
    delivery.refresh_from_db()
    assert delivery.state == "succeeded"
    assert [a.number for a in delivery.attempts.all()] == [2]
    assert len(receiver.received) == 1


def test_running_a_finished_delivery_again_sends_nothing(hook, team, receiver, deliver, run):
    delivery = deliver(emitted(team))
    assert deliveries.delivery_attempt(delivery_id=str(delivery.public_id)) == "skipped"
    assert len(receiver.received) == 1


def test_the_body_is_the_exact_json_signed(hook, team, receiver, deliver):
    delivery = deliver(emitted(team, payload={"n": 1, "s": "é"}))
    got = receiver.received[0]
    assert got.body == delivery.body.encode()
    assert json.loads(got.body)["data"] == {"n": 1, "s": "é"}
