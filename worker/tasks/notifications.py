"""Webhook jobs: one delivery attempt per job, and the periodic dispatch of retries that came due.

The handler is thin: ``apps.notifications.deliveries.delivery_attempt`` checks the target,
signs, sends and records, and leaves a finished delivery alone (running a job twice is safe).
"""

from __future__ import annotations

from celery import shared_task

from apps.jobs.models import Job
from apps.notifications import deliveries
from worker.runner import handles


@handles(deliveries.DELIVER_JOB)
def deliver(job: Job, report) -> dict:
    """Make one attempt of the delivery the job names; a retry, if needed, gets a job of its own later."""
    report(5, "sending")
    outcome = deliveries.delivery_attempt(delivery_id=job.params["public_id"])
    return {"outcome": outcome}


@shared_task(name="notifications.dispatch")
def dispatch() -> int:
    """Enqueue a job for each delivery whose retry came due."""
    return deliveries.deliveries_dispatch_due()
