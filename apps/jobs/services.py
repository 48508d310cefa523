"""Enqueue, claim, report, finish and sweep jobs.

The web process enqueues by task *name*, so it never imports worker code.
Claiming and finishing happen under a row lock (on SQLite the IMMEDIATE
transaction holds the database write lock), which makes every step safe to
run twice: a duplicate Celery message finds the job claimed or finished and
does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.audit import context
from apps.audit import services as audit
from apps.audit.choices import Outcome

from .models import FINISHED, Job, JobStatus

logger = logging.getLogger(__name__)

RUN_TASK = "jobs.run"


def _dispatch(job_id: int) -> None:
    from controlplane.celery import app

    app.send_task(RUN_TASK, args=[job_id])


def job_enqueue(*, kind: str, target: Any = None, params: dict | None = None, max_attempts: int | None = None) -> Job:
    """Create a queued job in the caller's transaction; the task is sent after commit."""
    target_type, target_id, _ = audit.describe(target)
    ctx = context.current()
    job = Job.objects.create(
        kind=kind,
        params=params or {},
        target_type=target_type,
        target_id=target_id,
        max_attempts=max_attempts or settings.ASSAY_JOB_MAX_ATTEMPTS,
        request_id=ctx.request_id,
        principal=ctx.principal.as_dict() if ctx.principal else None,
        dispatched_at=timezone.now(),
    )
    transaction.on_commit(lambda: _dispatch(job.pk))
    return job


@dataclass
class Claim:
    job: Job
    token: str


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def job_claim(job_id: int) -> Claim | None:
    """Take a job for this worker, or None when it is finished or held under a live lease."""
    now = timezone.now()
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status in FINISHED:
            return None
        if job.status == JobStatus.RUNNING and job.lease_expires_at and job.lease_expires_at > now:
            return None
        if job.attempts >= job.max_attempts:
            job.status = JobStatus.FAILED
            job.error = f"gave up after {job.attempts} attempts (the worker running it stopped each time)"
            job.finished_at = now
            job.save()
            audit.record(action="job.failed", outcome=Outcome.FAILED, target=job, reason=job.error)
            return None
        token = uuid.uuid4().hex
        was = job.status
        job.status = JobStatus.RUNNING
        job.attempts += 1
        job.lease_token = token
        job.lease_expires_at = now + timedelta(seconds=settings.ASSAY_JOB_LEASE_SECONDS)
        job.worker = worker_name()
        job.started_at = job.started_at or now
        job.message = "started" if was == JobStatus.QUEUED else f"restarted (attempt {job.attempts})"
        job.save()
        audit.record(
            action="job.started",
            target=job,
            after={"attempt": job.attempts, "worker": job.worker},
            related=(job.target_type, job.target_id, ""),
        )
        return Claim(job=job, token=token)


def job_report(claim: Claim, *, progress: int, message: str = "") -> bool:
    """Record progress and renew the lease. False when the lease was lost (stop working)."""
    now = timezone.now()
    updated = Job.objects.filter(pk=claim.job.pk, lease_token=claim.token, status=JobStatus.RUNNING).update(
        progress=max(0, min(100, int(progress))),
        message=message[:500],
        lease_expires_at=now + timedelta(seconds=settings.ASSAY_JOB_LEASE_SECONDS),
        updated_at=now,
    )
    return bool(updated)


def job_finish(claim: Claim, *, ok: bool, result: Any = None, error: str = "", message: str = "") -> bool:
    """Mark the job succeeded or failed, if this claim still holds it. Audited."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=claim.job.pk).first()
        if job is None or job.lease_token != claim.token or job.status != JobStatus.RUNNING:
            logger.warning("job %s: finish ignored, the lease was taken over", claim.job.pk)
            return False
        job.status = JobStatus.SUCCEEDED if ok else JobStatus.FAILED
        job.progress = 100 if ok else job.progress
        job.result = result
        job.error = error[:10000]
        job.message = message or ("done" if ok else "failed")
        job.finished_at = timezone.now()
        job.lease_expires_at = None
        job.save()
        audit.record(
            action="job.succeeded" if ok else "job.failed",
            outcome=Outcome.SUCCESS if ok else Outcome.FAILED,
            target=job,
            related=(job.target_type, job.target_id, ""),
            reason=error[:2000],
        )
        return True


def job_sweep() -> list[int]:
    """Re-send jobs whose lease expired, or that sat queued past the grace period.

    A job held under a live lease is never touched. Returns the re-sent job ids.
    """
    now = timezone.now()
    grace = now - timedelta(seconds=settings.ASSAY_JOB_QUEUED_GRACE_SECONDS)
    stale = Q(status=JobStatus.RUNNING, lease_expires_at__lt=now) | Q(status=JobStatus.QUEUED, dispatched_at__lt=grace)
    ids = []
    with transaction.atomic():
        for job in Job.objects.select_for_update().filter(stale).order_by("pk")[:500]:
            job.dispatched_at = now
            if job.status == JobStatus.RUNNING:
                job.message = "worker lost; re-queued"
            job.save(update_fields=["dispatched_at", "message", "updated_at"])
            audit.record(
                action="job.requeued",
                target=job,
                reason="lease expired" if job.status == JobStatus.RUNNING else "never picked up",
            )
            ids.append(job.pk)
        for job_id in ids:
            transaction.on_commit(lambda job_id=job_id: _dispatch(job_id))
    return ids
