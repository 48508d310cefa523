"""Runs job rows: claims one, calls its handler with a progress reporter, records the outcome.

A handler is ``fn(job, report)`` registered with ``@handles("kind")``; it calls
``report(percent, message)`` as it goes (which renews the job's lease) and
returns a JSON-able result. Raising ``JobFailed`` fails the job with a message
meant for people; any other exception fails it with the exception's text.

A handler must report at least once per ``ASSAY_JOB_LEASE_SECONDS``: a job
that stays silent longer is taken for dead, re-queued by the sweeper and run
again elsewhere, and the silent run's later reports raise ``LeaseLost``.
Handlers should therefore be safe to run again from the start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from apps.audit import context
from apps.core.principals import Principal
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
    origin = Job.objects.filter(pk=job_id).values("request_id", "principal").first()
    if origin is None:
        return
    changes: dict = {}
    if origin["request_id"]:
        changes["request_id"] = origin["request_id"]
    if origin["principal"]:
        changes["principal"] = Principal.from_dict(origin["principal"])
    if changes:
        context.update(**changes)


def run_job(job_id: int) -> str:
    """Claim and run one job; returns what happened (``succeeded``, ``failed``, ``skipped``, ``lease_lost``).

    Safe to call twice: a finished job, or one held under another worker's live
    lease, is left alone. Events written meanwhile carry the request id and
    principal of the request that enqueued the job, whichever message (the
    original or the sweeper's) brought it here.
    """
    import worker.tasks  # noqa: F401  (registers every handler, also when called outside a worker)

    previous = context.current()
    try:
        _origin_context(job_id)
        return _run_claimed(job_id)
    finally:
        context.set_context(previous)


def _run_claimed(job_id: int) -> str:
    claim = jobs.job_claim(job_id)
    if claim is None:
        return "skipped"
    job = claim.job
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
