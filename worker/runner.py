"""Runs job rows: claims one, calls its handler with a progress reporter, records the outcome.

A worker runs a job named by a ``jobs.run`` message (``run_job``), or, woken by a
``jobs.wake`` message, every queued job it can take until none is left
(``run_queued``).

A handler is ``fn(job, report)`` registered with ``@handles("kind")``; it calls
``report(percent, message)`` as it goes (which renews the job's lease) and
returns a JSON-able result. Raising ``JobFailed`` fails the job with a message
meant for people; any other exception fails it with the exception's text.

A handler must report at least once per ``ASSAY_JOB_LEASE_SECONDS``: a job
that stays silent longer is taken for dead, re-queued by the sweeper and run
again elsewhere, and the silent run's later reports raise ``LeaseLost``.
Handlers should therefore be safe to run again from the start.

Handlers are registered by importing ``worker.tasks``, which every entry point does before it
runs a job: Celery's autodiscovery, the broker-less worker (``worker.standalone``) and the
eager runner (``apps.jobs.services.EAGER_RUNNER``). This module never imports the tasks, which
import it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings

from apps.audit import context
from apps.core import request_cache
from apps.jobs import services as jobs
from apps.jobs.models import Job

logger = logging.getLogger(__name__)

Handler = Callable[[Job, Callable[[int, str], None]], Any]
HANDLERS: dict[str, Handler] = {}


class JobFailed(Exception):
    """A job's work cannot succeed; the message is shown to people as it is."""


class LeaseLost(Exception):
    """Another worker took the job over after this one's lease expired."""


def handles(kind: str) -> Callable[[Handler], Handler]:
    """Register the handler for one job kind (``@handles("registry.verify_version")``)."""

    def register(fn: Handler) -> Handler:
        HANDLERS[kind] = fn
        return fn

    return register


def _origin_context(job_id: int) -> None:
    """Act for the request that enqueued the job: its request id and principal go into every event."""
    origin = Job.objects.filter(pk=job_id).only("request_id", "principal").first()
    if origin is not None:
        jobs.act_for(origin)


def run_job(job_id: int) -> str:
    """Claim and run one job; returns what happened (``succeeded``, ``failed``, ``skipped``, ``lease_lost``).

    Safe to call twice: a finished job, or one held under another worker's live
    lease, is left alone. Events written meanwhile carry the request id and
    principal of the request that enqueued the job, whichever message (the
    original or the sweeper's) brought it here.
    """
    previous = context.current()
    try:
        _origin_context(job_id)
        return _run_claimed(job_id)
    finally:
        context.set_context(previous)


DRAIN_SECONDS = 60.0  # a drain hands its worker back after this long, and asks another to go on


def run_queued(*, max_jobs: int | None = None, should_stop: Callable[[], bool] | None = None) -> list[tuple[int, str]]:
    """Run queued jobs, oldest first, until none is left: what a worker does when woken.

    Each job is claimed as it is taken (``jobs.job_claim_next``), so several workers
    drain the table side by side without taking the same job, and each runs as
    ``run_job`` would run it. While more jobs wait, the worker rings its own doorbell
    so that an idle worker joins in; after ``max_jobs`` (``ASSAY_JOB_DRAIN_MAX_JOBS``)
    or ``DRAIN_SECONDS`` it stops and rings, so one wake-up never holds a worker
    forever. ``should_stop`` (a stopping worker's flag) is asked before each job is taken.
    Returns ``(job id, outcome)`` for each job it took.
    """
    limit = max_jobs or settings.ASSAY_JOB_DRAIN_MAX_JOBS
    deadline = time.monotonic() + DRAIN_SECONDS
    done: list[tuple[int, str]] = []
    while len(done) < limit and time.monotonic() < deadline:
        if should_stop is not None and should_stop():
            return done
        previous = context.current()
        try:
            claim = jobs.job_claim_next()
            if claim is None:
                return done
            if jobs.jobs_waiting():
                jobs.doorbell.ring()
            done.append((claim.job.pk, _run(claim)))
        finally:
            context.set_context(previous)
    if jobs.jobs_waiting():
        jobs.doorbell.ring()
    return done


def _run_claimed(job_id: int) -> str:
    claim = jobs.job_claim(job_id)
    if claim is None:
        return "skipped"
    return _run(claim)


def _run(claim: jobs.Claim) -> str:
    """Run a claimed job in a unit of work of its own: nothing it remembers (grants) reaches the next job."""
    with request_cache.unit_of_work():
        return _run_in_unit(claim)


def _run_in_unit(claim: jobs.Claim) -> str:
    job = claim.job
    job_id = job.pk
    handler = HANDLERS.get(job.kind)
    if handler is None:
        jobs.job_finish(claim, ok=False, error=f"no handler for job kind {job.kind!r}")
        return "failed"

    def report(progress: int, message: str = "") -> None:
        if not jobs.job_report(claim, progress=progress, message=message):
            raise LeaseLost(f"job {job_id} lease lost")

    try:
        result = handler(job, report)
    except LeaseLost:
        logger.warning("job %s: lease lost, stopping", job_id)
        return "lease_lost"
    except JobFailed as exc:
        finished = jobs.job_finish(claim, ok=False, error=str(exc), message=str(exc)[:500])
        return "failed" if finished else "lease_lost"
    except Exception as exc:
        logger.exception("job %s (%s) failed", job_id, job.kind)
        error = f"{exc.__class__.__name__}: {exc}"
        finished = jobs.job_finish(claim, ok=False, error=error, message="failed unexpectedly")
        return "failed" if finished else "lease_lost"
    return "succeeded" if jobs.job_finish(claim, ok=True, result=result) else "lease_lost"
