"""The job courier tasks (a named job; a wake-up that drains the queue), the sweeper, and event reactions."""

from celery import shared_task

from apps.jobs import events
from apps.jobs import services as jobs
from apps.jobs.models import Job
from worker.runner import handles, run_job, run_queued


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


def react(job: Job, report) -> object:
    """One subscriber's reaction to one published event (``apps.jobs.events``): calls its handler."""
    report(1, f"{job.params.get('subscriber')} reacting to {job.params.get('event')}")
    return events.deliver(job, report)


for _name in events.EVENTS:
    handles(events.job_kind(_name))(react)
