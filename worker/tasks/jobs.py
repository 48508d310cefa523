"""The job courier task and the sweeper."""

from celery import shared_task

from apps.jobs import services as jobs
from worker.runner import run_job


@shared_task(name="jobs.run", acks_late=True)
def run(job_id: int) -> str:
    """Run a job row by id (idempotent: see ``worker.runner.run_job``)."""
    return run_job(job_id)


@shared_task(name="jobs.sweep")
def sweep() -> int:
    """Re-queue jobs whose lease expired or that were never picked up."""
    return len(jobs.job_sweep())
