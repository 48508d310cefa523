"""The gate's long poll: ``?wait=<seconds>`` holds the answer until it is final or it changes.

A pipeline asks the gate once and blocks, instead of looping in a shell. The first answer is returned
at once when it is final for the pipeline (``FINAL``: allowed, a break-glass release, blocked by
violations a person must resolve, or rejected). Otherwise the request polls, every
``ASSAY_GATE_POLL_SECONDS``, a fingerprint of the stored state the answer rests on: the version's
release requests for the environment, their approvals, the version's evidence runs and its stored
gate decision there (written by other requests and by workers, in other processes; an ``evaluating``
answer moves when the job has stored the decision). When the fingerprint moves, or an open request's
expiry or an approval's revalidation date passes, the gate is judged again, and the answer is returned
if its ``allowed`` or ``status`` differs from the first one. At the latest it is judged again and
returned when the wait (at most ``ASSAY_GATE_MAX_WAIT`` seconds) ends.

Each poll is a few indexed reads: no write, no lock, no transaction. Between polls the request's
database connections are closed, so a waiting pipeline holds none while it sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.models import Count, Max, Q
from django.utils import timezone

from apps.core.errors import ValidationFailed
from apps.evidence.models import EvidenceRun
from apps.registry.models import ModelVersion

from .models import Approval, Environment, GateDecision, ReleaseRequest

# Answers a pipeline acts on at once: waiting longer would not change them without a person's new step.
FINAL = frozenset({"allowed", "emergency", "blocked", "rejected"})

# How a wait ended (the gate's ``wait_outcome``).
NOT_ASKED, FINAL_AT_ONCE, CHANGED, TIMED_OUT = "not_asked", "final", "changed", "timeout"


def wait_seconds(raw: str | None) -> float:
    """``?wait=`` as seconds: absent is 0; above ``ASSAY_GATE_MAX_WAIT`` is that bound; negative,
    not a number or not finite is a 400."""
    if raw is None or raw == "":
        return 0.0
    bound = float(settings.ASSAY_GATE_MAX_WAIT)
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not (seconds >= 0 and seconds != float("inf")):  # NaN, negative and infinite all land here
        raise ValidationFailed(
            f"wait: give a number of seconds from 0 to {bound:g} (larger values wait {bound:g}); got {raw!r}.",
            errors={"wait": [f"A number of seconds from 0 to {bound:g}."]},
        )
    return min(seconds, bound)


def fingerprint(version: ModelVersion, environment: Environment, dataset_ids: list[int]) -> tuple:
    """The stored state the gate's answer rests on, in four indexed reads."""
    releases = tuple(
        ReleaseRequest.objects.filter(version=version, environment=environment)
        .order_by("pk")
        .values_list("pk", "status", "binding_digest", "evaluated_at", "updated_at")
    )
    approvals = Approval.objects.filter(release__version=version, release__environment=environment).aggregate(
        n=Count("pk"), last=Max("pk"), void=Count("pk", filter=Q(void=True))
    )
    runs = EvidenceRun.objects.filter(Q(version=version) | Q(dataset_id__in=dataset_ids)).aggregate(
        n=Count("pk"), last=Max("updated_at"), done=Count("pk", filter=Q(finished_at__isnull=False))
    )
    decided = tuple(
        GateDecision.objects.filter(version=version, environment=environment).values_list("evaluated_at", flat=True)
    )
    return (releases, tuple(sorted(approvals.items())), tuple(sorted(runs.items())), decided)


def _moments(gate: Any) -> list:
    """Times at which the gate's answer changes with no write: an open request's expiry, a revalidation date."""
    release = gate.release
    if release is None:
        return []
    return [m for m in (release.expires_at, release.revalidate_at) if m is not None]


def _let_go_of_connections() -> None:
    """Close this thread's database connections before sleeping (never inside a transaction, where
    closing would lose it: there the connection stays, as in a test's wrapping transaction)."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


def gate_wait(
    gate: Any, *, judge: Callable[[], Any], seconds: float, clock: Callable[[], float] = time.monotonic
) -> tuple[Any, str, float]:
    """Wait up to ``seconds`` for the gate's answer to become final or change: (gate, outcome, seconds waited).

    ``gate`` is the first answer and ``judge`` judges it again (a full, read-only gate read).
    """
    if seconds <= 0:
        return gate, NOT_ASKED, 0.0
    if gate.status in FINAL:
        return gate, FINAL_AT_ONCE, 0.0
    start = clock()
    deadline = start + seconds
    first = (gate.allowed, gate.status)
    version, environment = gate.version, gate.environment
    dataset_ids = [d.pk for d in version.training_datasets.all()]
    if version.evaluation_dataset_id:
        dataset_ids.append(version.evaluation_dataset_id)
    seen = fingerprint(version, environment, dataset_ids)
    moments = _moments(gate)
    interval = max(0.01, float(settings.ASSAY_GATE_POLL_SECONDS))
    while True:
        left = deadline - clock()
        if left <= 0:
            return judge(), TIMED_OUT, clock() - start
        _let_go_of_connections()
        time.sleep(min(interval, left))
        now = fingerprint(version, environment, dataset_ids)
        due = any(m <= timezone.now() for m in moments)
        if now == seen and not due:
            continue
        seen = now
        again = judge()
        moments = [m for m in _moments(again) if m > timezone.now()]
        if (again.allowed, again.status) != first:
            return again, CHANGED, clock() - start
