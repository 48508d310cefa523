"""When a rollout is looked at next: the engine's bookmark, and the periodic queueing of the rollouts that are due."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from apps.jobs import services as jobs
from apps.jobs.models import Job, JobStatus

from ..models import Deployment
from .common import ADVANCE_JOB, SYSTEM, _locked


@transaction.atomic(durable=True)
def rollout_wait(*, deployment_id: int, fence: int, at: datetime, message: str = "") -> bool:
    """Look at the rollout again at ``at`` (readiness not yet there, a window not yet over, a target that
    did not answer). Not audited: a bookmark, not a state change."""
    deployment = _locked(deployment_id, by_pk=True)
    if deployment.fence != fence:
        return False
    deployment.next_check_at = at
    if message:
        deployment.message = message[:2000]
    deployment.save(update_fields=["next_check_at", "message", "updated_at"])
    return True


@transaction.atomic(durable=True)
def deployments_enqueue_due(*, now: datetime | None = None, limit: int = 200) -> list[int]:
    """Queue a ``deployments.advance`` job for every rollout whose next look is due, unless one is already
    queued or running for it (the periodic ``deployments.tick``). Writes job rows only: each job's moves are
    audited."""
    now = now or timezone.now()
    due = list(
        Deployment.objects.filter(next_check_at__lte=now)
        .order_by("next_check_at")
        .values_list("pk", "public_id")[:limit]
    )
    if not due:
        return []
    busy = set(
        Job.objects.filter(
            kind=ADVANCE_JOB,
            target_type="deployment",
            target_id__in=[str(p) for _, p in due],
            status__in=(JobStatus.QUEUED, JobStatus.RUNNING),
        ).values_list("target_id", flat=True)
    )
    queued = []
    for pk, public_id in due:
        if str(public_id) in busy:
            continue
        jobs.job_enqueue(
            kind=ADVANCE_JOB,
            target=("deployment", str(public_id), ""),
            params={"deployment_id": pk},
            actor=SYSTEM,
        )
        queued.append(pk)
    return queued
