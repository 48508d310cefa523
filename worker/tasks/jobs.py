"""The job courier tasks (a named job; a wake-up that drains the queue) and the sweeper."""

from celery import shared_task

from apps.jobs import services as jobs
from worker.runner import run_job, run_queued


@shared_task(name="jobs.run", acks_late=True)
def run(job_id: int) -> str:
    """Run a job row by id (idempotent: see ``worker.runner.run_job``)."""
    return run_job(job_id)


@shared_task(name="jobs.wake", acks_late=False)
def wake() -> list:
    """Run queued jobs until none is left (the doorbell's message; carries no job id, safe to lose or repeat).

    Acknowledged on receipt: the jobs it takes are leased rows, so a worker that dies
    mid-drain loses nothing, and a redelivered wake-up would only find the table drained.
    """
    return run_queued()


@shared_task(name="jobs.sweep")
def sweep() -> int:
    """Re-queue jobs whose lease expired or that were never picked up."""
    return len(jobs.job_sweep())
