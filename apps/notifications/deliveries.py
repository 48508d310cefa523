"""Deliveries: created by ``emit`` in the caller's transaction (for a published event, that is the
notifications app's reaction job, ``apps.notifications.subscribers``), attempted by workers, retried
with backoff.

Life of a delivery::

    pending ──job──► delivering ──2xx──► succeeded
       ▲                 │ ──3xx, other 4xx, target refused, attempts used up──► failed
       └── backoff ◄─────┘   (connection error, timeout, 5xx, 429)

Each state change runs under the delivery's row lock. A delivery is carried by a job row
(``apps.jobs``): its lease and the sweeper re-run an attempt whose worker died, and the
attempt then goes out again with the same ``Assay-Delivery`` id, so the receiver can tell
it already has it. A retry waits in ``pending`` until ``next_attempt_at``; the periodic
``deliveries_dispatch_due`` gives it a new job then. Only the final outcome is audited
(``webhook_delivery.succeeded`` / ``webhook_delivery.failed``, actor the webhook worker).
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.audit import services as audit
from apps.audit.choices import Outcome
from apps.core.principals import Principal
from apps.jobs import services as jobs
from apps.jobs.models import FINISHED as JOB_FINISHED

from . import secrets, sending, targets
from .choices import FINISHED, DeliveryState
from .models import Webhook, WebhookDelivery, WebhookDeliveryAttempt

DELIVER_JOB = "notifications.deliver"
WORKER = Principal.system("webhook-worker")
PING = "ping"
DISPATCH_BATCH = 500


# ---------------------------------------------------------------------------------------------
# Creating deliveries (in the caller's transaction)


def delivery_create(*, webhook: Webhook, event: str, payload: dict, event_id: str | None = None) -> WebhookDelivery:
    """A pending delivery of ``event`` to ``webhook`` and its job, in the caller's transaction.

    The body is fixed here, so every attempt sends the same bytes. Workers are woken after commit.
    ``event_id``: the published event it is made for (at most one delivery per webhook and event).
    """
    public_id = uuid.uuid4()
    created_at = timezone.now()
    body = json.dumps(
        {"id": str(public_id), "event": event, "created_at": created_at.isoformat(), "data": payload},
        cls=DjangoJSONEncoder,
        separators=(",", ":"),
    )
    job = jobs.job_enqueue(
        kind=DELIVER_JOB, target=("webhook_delivery", str(public_id), event), params={"public_id": str(public_id)}
    )
    return WebhookDelivery.objects.create(
        public_id=public_id,
        webhook=webhook,
        event=event,
        body=body,
        state=DeliveryState.PENDING,
        next_attempt_at=created_at,
        job=job,
        event_id=event_id,
    )


def deliveries_for_event(
    *, event: str, team_id: int | None, payload: dict, event_id: str | None = None
) -> list[WebhookDelivery]:
    """One delivery per active webhook of ``team_id`` (None: of every team) subscribed to ``event``.

    With ``event_id``, a webhook that already has its delivery of that event gets no second one
    (the reaction that calls this ran again after its worker died).
    """
    hooks = Webhook.objects.filter(active=True)
    if team_id is not None:
        hooks = hooks.filter(owner_team_id=team_id)
    done: set[int] = set()
    if event_id is not None:
        done = set(WebhookDelivery.objects.filter(event_id=event_id).values_list("webhook_id", flat=True))
    # A team has a handful of webhooks: the subscription test is done here, portable across databases.
    return [
        delivery_create(webhook=h, event=event, payload=payload, event_id=event_id)
        for h in hooks
        if event in h.events and h.pk not in done
    ]


# ---------------------------------------------------------------------------------------------
# Backoff


def backoff_delay(attempt: int, *, rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    ``min(MAX_DELAY, BASE * 2**(attempt-1))`` times a factor drawn uniformly from
    ``[1 - JITTER, 1 + JITTER]`` (``ASSAY_WEBHOOK_RETRY_*``), so receivers that failed together
    are not hit again together.
    """
    base = float(settings.ASSAY_WEBHOOK_RETRY_BASE_SECONDS)
    cap = float(settings.ASSAY_WEBHOOK_RETRY_MAX_DELAY_SECONDS)
    jitter = float(settings.ASSAY_WEBHOOK_RETRY_JITTER)
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    return delay * (1 - jitter + 2 * jitter * rng())


def retry_after_seconds(value: str, *, now: datetime) -> float | None:
    """A ``Retry-After`` header's delay (seconds, or an HTTP date), or None when absent or unreadable."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - now).total_seconds())


def _retryable(sent: sending.Sent) -> bool:
    if sent.status_code is None:
        return True  # could not connect, timed out, connection reset
    return sent.status_code >= 500 or sent.status_code == 429


# ---------------------------------------------------------------------------------------------
# Attempts (worker side)


@dataclass(frozen=True)
class Prepared:
    """What an attempt sends, read under the lock when the attempt began."""

    pk: int
    public_id: str
    event: str
    body: str
    url: str
    secret_encrypted: str
    number: int


def _finish(delivery: WebhookDelivery, state: str, *, reason: str = "") -> None:
    delivery.state = state
    delivery.finished_at = timezone.now()
    delivery.next_attempt_at = None
    if reason:
        delivery.last_error = reason[:500]
    delivery.save()
    ok = state == DeliveryState.SUCCEEDED
    audit.record(
        action="webhook_delivery.succeeded" if ok else "webhook_delivery.failed",
        outcome=Outcome.SUCCESS if ok else Outcome.FAILED,
        actor=WORKER,
        target=delivery,
        related=delivery.webhook,
        after={
            "state": state,
            "attempts": delivery.round_attempts,
            "status_code": delivery.last_status_code,
            "event": delivery.event,
        },
        reason="" if ok else delivery.last_error,
    )


def _locked(delivery_id: str) -> WebhookDelivery | None:
    return (
        WebhookDelivery.objects.select_for_update(of=("self",))
        .select_related("webhook")
        .filter(public_id=delivery_id)
        .first()
    )


@transaction.atomic
def delivery_begin(*, delivery_id: str) -> Prepared | None:
    """Start the next attempt; None when the delivery is finished, gone, out of attempts or its webhook is off.

    Out of attempts (workers died mid-attempt too often) or a disabled webhook fail the delivery
    (audited). ``next_attempt_at`` is set one job lease ahead: should this attempt's job be given
    up, the dispatcher starts the delivery again after it.
    """
    delivery = _locked(delivery_id)
    if delivery is None or delivery.state in FINISHED:
        return None
    if delivery.round_attempts >= settings.ASSAY_WEBHOOK_MAX_ATTEMPTS:
        _finish(delivery, DeliveryState.FAILED, reason=f"gave up after {delivery.round_attempts} attempt(s)")
        return None
    if not delivery.webhook.active:
        _finish(delivery, DeliveryState.FAILED, reason="the webhook is disabled")
        return None
    delivery.state = DeliveryState.DELIVERING
    delivery.attempt_count += 1
    delivery.round_attempts += 1
    delivery.next_attempt_at = timezone.now() + timedelta(seconds=settings.ASSAY_JOB_LEASE_SECONDS)
    delivery.save()
    return Prepared(
        pk=delivery.pk,
        public_id=str(delivery.public_id),
        event=delivery.event,
        body=delivery.body,
        url=delivery.webhook.url,
        secret_encrypted=delivery.webhook.secret_encrypted,
        number=delivery.attempt_count,
    )


@transaction.atomic
def delivery_record(
    *,
    prepared: Prepared,
    started_at: datetime,
    sent: sending.Sent,
    permanent: bool = False,
    rng: Callable[[], float] = random.random,
) -> str:
    """Record one attempt and move the delivery on: ``succeeded``, ``retrying`` or ``failed``.

    ``permanent``: the attempt failed for a reason a retry cannot fix (the target was refused).
    An attempt whose delivery moved on meanwhile (another worker took it over) is recorded and
    changes nothing else: ``superseded``.
    """
    delivery = _locked(prepared.public_id)
    now = timezone.now()
    ok = sent.status_code is not None and 200 <= sent.status_code < 300
    retry = not ok and not permanent and _retryable(sent)
    current = (
        delivery is not None
        and delivery.state == DeliveryState.DELIVERING
        and delivery.attempt_count == prepared.number
    )
    delay = None
    if current and retry and delivery.round_attempts < settings.ASSAY_WEBHOOK_MAX_ATTEMPTS:
        delay = backoff_delay(delivery.round_attempts, rng=rng)
        asked = retry_after_seconds(sent.retry_after, now=now) if sent.status_code in (429, 503) else None
        if asked is not None:  # the receiver said when: that, within [1 s, the longest backoff]
            delay = min(float(settings.ASSAY_WEBHOOK_RETRY_MAX_DELAY_SECONDS), max(1.0, asked))
    error = sent.error
    if not error and not ok:
        error = f"HTTP {sent.status_code}" + (" (redirects are not followed)" if 300 <= sent.status_code < 400 else "")
    WebhookDeliveryAttempt.objects.create(
        delivery_id=prepared.pk,
        number=prepared.number,
        started_at=started_at,
        duration_ms=sent.duration_ms,
        address=sent.address[:64],
        status_code=sent.status_code,
        response_excerpt=sent.excerpt[: sending.EXCERPT_BYTES],
        error=error[:500],
        retry_in_seconds=delay,
    )
    if not current:
        return "superseded"
    delivery.last_status_code = sent.status_code
    delivery.last_error = error[:500]
    if ok:
        _finish(delivery, DeliveryState.SUCCEEDED)
        return "succeeded"
    if delay is not None:
        delivery.state = DeliveryState.PENDING
        delivery.next_attempt_at = now + timedelta(seconds=delay)
        delivery.save()
        return "retrying"
    if retry:
        error = f"gave up after {delivery.round_attempts} attempt(s); last: {error}"
    _finish(delivery, DeliveryState.FAILED, reason=error)
    return "failed"


def delivery_attempt(
    *,
    delivery_id: str,
    resolver: targets.Resolver = targets.system_resolver,
    rng: Callable[[], float] = random.random,
) -> str:
    """Make one attempt of a delivery: check the target again, sign, POST, record. Returns the outcome.

    The target is re-checked right before connecting and the request goes to an address the
    check approved (``targets``, ``sending``). Safe to call again: a finished delivery is skipped.
    """
    prepared = delivery_begin(delivery_id=delivery_id)
    if prepared is None:
        return "skipped"
    started_at = timezone.now()
    permanent = False
    try:
        target = targets.check(prepared.url, allowed=targets.allowed_hosts(), resolver=resolver)
        secret = secrets.decrypt(prepared.secret_encrypted)
    except targets.TargetRefused as exc:
        sent, permanent = sending.Sent(None, "", f"refused: {exc.detail}", 0, ""), True
    except targets.ResolutionFailed as exc:
        sent = sending.Sent(None, "", str(exc), 0, "")
    except ValueError as exc:  # the secret cannot be decrypted
        sent, permanent = sending.Sent(None, "", str(exc), 0, ""), True
    else:
        body = prepared.body.encode()
        timestamp = int(time_now().timestamp())
        headers = sending.headers_for(
            secret=secret, event=prepared.event, delivery_id=prepared.public_id, body=body, timestamp=timestamp
        )
        sent = sending.post(target, body=body, headers=headers, timeout=settings.ASSAY_WEBHOOK_TIMEOUT_SECONDS)
    return delivery_record(prepared=prepared, started_at=started_at, sent=sent, permanent=permanent, rng=rng)


def time_now() -> datetime:
    return timezone.now()


# ---------------------------------------------------------------------------------------------
# Dispatching retries that came due (periodic)


def deliveries_dispatch_due(*, now: datetime | None = None) -> int:
    """Give a new job to each delivery whose next attempt is due and whose last job is over.

    Run periodically (``notifications.dispatch``). Also restarts a delivery stuck in
    ``delivering`` whose job was given up. Locks the rows it takes, skipping rows another
    dispatcher holds. Not audited: the attempts and the final outcome are what matter.
    Returns how many jobs it enqueued.
    """
    now = now or timezone.now()
    with transaction.atomic():
        due = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(state__in=(DeliveryState.PENDING, DeliveryState.DELIVERING), next_attempt_at__lte=now)
            .filter(Q(job__isnull=True) | Q(job__status__in=JOB_FINISHED))
            .order_by("next_attempt_at")[:DISPATCH_BATCH]
        )
        count = 0
        for delivery in due:
            delivery.job = jobs.job_enqueue(
                kind=DELIVER_JOB,
                target=delivery,
                params={"public_id": str(delivery.public_id)},
                actor=WORKER,
            )
            delivery.save(update_fields=["job", "updated_at"])
            count += 1
    return count
