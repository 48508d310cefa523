"""Runs job rows: claims one, calls its handler with a progress reporter, records the outcome.

A handler is ``fn(job, report)`` registered with ``@handles("kind")``; it calls
``report(percent, message)`` as it goes (which renews the job's lease) and
returns a JSON-able result. Raising ``JobFailed`` fails the job with a message
meant for people; any other exception fails it with the exception's text.
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
    def register(fn: Handler) -> Handler:
        HANDLERS[kind] = fn
        return fn

    return register


def run_job(job_id: int) -> str:
    """Claim and run one job. Safe to call twice: a finished or live-leased job is left alone."""
    claim = jobs.job_claim(job_id)
    if claim is None:
        return "skipped"
    job = claim.job
    if job.principal or job.request_id:
        context.update(
            request_id=job.request_id or context.current().request_id,
            principal=Principal.from_dict(job.principal) if job.principal else None,
        )
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
        jobs.job_finish(claim, ok=False, error=str(exc), message=str(exc)[:500])
        return "failed"
    except Exception as exc:
        logger.exception("job %s (%s) failed", job_id, job.kind)
        jobs.job_finish(claim, ok=False, error=f"{exc.__class__.__name__}: {exc}", message="failed unexpectedly")
        return "failed"
    jobs.job_finish(claim, ok=True, result=result)
    return "succeeded"
