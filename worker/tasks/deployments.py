"""Rollout jobs: ``deployments.advance`` moves one rollout a step (``worker/rollouts.py``), and the periodic
``deployments.tick`` queues that job for every rollout whose next look is due; the periodic
``deployments.reconcile`` reads back every target (``worker/reconciler.py``)."""

from __future__ import annotations

from celery import shared_task

from apps.deployments import services
from apps.jobs.models import Job
from worker import reconciler, rollouts
from worker.runner import handles


@handles(services.ADVANCE_JOB)
def advance(job: Job, report) -> dict:
    """Take the rollout (its fence grows), make its next moves, record them under that fence; safe to repeat."""
    return rollouts.advance(int(job.params["deployment_id"]), report)


@shared_task(name="deployments.tick")
def tick() -> int:
    """Queue ``deployments.advance`` for each rollout whose next look is due (none twice)."""
    return len(services.deployments_enqueue_due())


@shared_task(name="deployments.reconcile")
def reconcile() -> int:
    """Compare what every target runs with what was approved and deployed; flag (audit, publish) what differs."""
    return reconciler.reconcile_all()
