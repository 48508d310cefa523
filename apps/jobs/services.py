"""Enqueue, claim, report, finish and sweep jobs.

The job table is the queue; the broker is a doorbell. Enqueueing writes a
queued row and, after commit, rings this process's doorbell
(``apps.jobs.doorbell``): at most one ``jobs.wake`` message per process per
``ASSAY_JOB_WAKE_INTERVAL_SECONDS``, however many jobs were enqueued. A worker
that gets it claims queued rows one at a time (``job_claim_next``: the oldest
row nobody holds, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the write lock of
the IMMEDIATE transaction on SQLite) until none is left. The sweeper sends a
``jobs.run`` message naming the job for work whose message or wake-up was lost,
and a duplicate ``jobs.run`` finds the job held or finished and does nothing.
The web process sends tasks by *name*, so it never imports worker code.
Without a broker (``CELERY_BROKER_URL=database://``, the embedded default) the
doorbell touches a file that the broker-less workers watch (``worker.standalone``),
and the sweeper's re-send is a ring too: those workers take queued rows themselves.
Every worker writes a heartbeat row (``worker_heartbeat``) that health reads.

Life of a job::

    queued ──claim──► running ──finish──► succeeded | failed
      ▲                  │
      └──── sweep ◄──────┘  (lease expired: the worker died or stopped reporting)

Claiming, finishing and sweeping happen under a row lock (on SQLite the
IMMEDIATE transaction holds the database write lock), which makes every step
safe to repeat: a duplicate Celery message finds the job held under a live
lease, or finished, and does nothing. A worker renews its lease each time it
reports progress; only a job whose lease expired is re-queued, and a finish
from a worker whose lease was taken over is ignored.

Audit events: ``job.started`` (each attempt), ``job.requeued`` (lease
expired), ``job.succeeded`` / ``job.failed``.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import timedelta
from importlib import import_module
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.audit import context
from apps.audit import services as audit
from apps.audit.choices import Outcome
from apps.core.fastpath import PreparedInsert, after_commit
from apps.core.principals import Principal

from .doorbell import Doorbell
from .models import FINISHED, Job, JobStatus, WorkerHeartbeat

logger = logging.getLogger(__name__)

RUN_TASK = "jobs.run"  # one named job (the sweeper's re-send, a redelivery)
WAKE_TASK = "jobs.wake"  # "there are queued jobs": the worker drains the table
# The module that runs a job in this process under ASSAY_CELERY_EAGER: importing it registers every handler.
EAGER_RUNNER = "worker.tasks.jobs"
_new_job = PreparedInsert(Job)  # a job row per registration: the ORM's save costs more than the insert
_new_job_with_id = PreparedInsert(Job, with_pk=True)
SWEEP_BATCH = 500


def brokerless() -> bool:
    """Whether this setup has no broker (``CELERY_BROKER_URL=database://``): workers poll the job table."""
    return settings.CELERY_BROKER_URL.startswith("database:")


def _touch_wake_file() -> None:
    """Wake the broker-less workers on this machine: they watch this file's modification time."""
    path = settings.ASSAY_WORKER_WAKE_FILE
    try:
        os.utime(path)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a"):
            pass
        os.utime(path)


def _send_wake() -> None:
    if brokerless():
        _touch_wake_file()
        return
    from controlplane.celery import app

    app.send_task(WAKE_TASK)


# One per process; its messages carry no job id, so rings from many requests share one.
doorbell = Doorbell(_send_wake, lambda: settings.ASSAY_JOB_WAKE_INTERVAL_SECONDS)


def _dispatch(job_id: int) -> None:
    """Send the courier task for one job by name; with ASSAY_CELERY_EAGER (development only) run it here."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        # The runner is named, like a task, rather than imported: the worker's code sits above every app.
        import_module(EAGER_RUNNER).run_job(job_id)
        return
    if brokerless():  # the job is queued in the table; a polling worker takes it
        doorbell.ring()
        return
    from controlplane.celery import app

    app.send_task(RUN_TASK, args=[job_id])


def _wake_workers(job_id: int) -> None:
    """After commit: ring the doorbell (the job is in the table for whichever worker answers it)."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        _dispatch(job_id)
        return
    doorbell.ring()


def job_enqueue(
    *,
    kind: str,
    target: Any = None,
    params: dict | None = None,
    max_attempts: int | None = None,
    actor: Principal | None = None,
    job_id: int | None = None,
) -> Job:
    """Create a queued job in the caller's transaction; the workers are woken after commit.

    ``job_id``: an id the caller drew from the table's sequence (so another row can point at
    the job while both are written in one statement, see ``written_together``).

    The job remembers the request id and principal of the work that asked for
    it (``actor``, else the current audit context), so the events its run
    writes in a worker name the same request and actor. Writes no audit event
    of its own: the calling service records the change that needs the job.
    """
    target_type, target_id, _ = audit.describe(target)
    ctx = context.current()
    principal = actor or ctx.principal
    values = {"id": job_id} if job_id is not None else {}
    job = (_new_job_with_id if job_id is not None else _new_job).create(
        **values,
        kind=kind,
        params=params or {},
        target_type=target_type,
        target_id=target_id,
        max_attempts=max_attempts or settings.ASSAY_JOB_MAX_ATTEMPTS,
        request_id=ctx.request_id,
        principal=principal.as_dict() if principal else None,
        dispatched_at=timezone.now(),
    )
    after_commit(lambda: _wake_workers(job.pk))
    return job


@dataclass
class Claim:
    """A worker's hold on a running job: the job row as claimed and the lease token."""

    job: Job
    token: str


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _give_up(job: Job, now) -> None:
    """Fail a job that used up its attempts (every worker running it stopped). Audited."""
    before = {"status": job.status, "attempts": job.attempts}
    job.status = JobStatus.FAILED
    job.error = f"gave up after {job.attempts} attempt(s): the worker running it stopped each time"
    job.message = "gave up"
    job.finished_at = now
    job.lease_token = ""
    job.lease_expires_at = None
    job.save()
    audit.record(
        action="job.failed",
        outcome=Outcome.FAILED,
        target=job,
        before=before,
        after={"status": job.status},
        related=(job.target_type, job.target_id, ""),
        reason=job.error,
    )


def act_for(job: Job) -> None:
    """Put the request id and principal that enqueued the job into the audit context (the caller restores it)."""
    changes: dict = {}
    if job.request_id:
        changes["request_id"] = job.request_id
    if job.principal:
        changes["principal"] = Principal.from_dict(job.principal)
    if changes:
        context.update(**changes)


def _claim_locked(job: Job, now) -> Claim | None:
    """Claim a job whose row the caller holds locked, or None when it is finished or held under a live lease."""
    if job.status in FINISHED:
        return None
    if job.status == JobStatus.RUNNING and job.lease_expires_at and job.lease_expires_at > now:
        return None
    if job.attempts >= job.max_attempts:
        _give_up(job, now)
        return None
    token = uuid.uuid4().hex
    job.status = JobStatus.RUNNING
    job.attempts += 1
    job.lease_token = token
    job.lease_expires_at = now + timedelta(seconds=settings.ASSAY_JOB_LEASE_SECONDS)
    job.worker = worker_name()
    job.started_at = job.started_at or now
    job.message = "started" if job.attempts == 1 else f"restarted (attempt {job.attempts} of {job.max_attempts})"
    job.save()
    audit.record(
        action="job.started",
        target=job,
        after={"attempt": job.attempts, "worker": job.worker},
        related=(job.target_type, job.target_id, ""),
    )
    return Claim(job=job, token=token)


def job_claim(job_id: int) -> Claim | None:
    """Take a job for this worker, or None when it is finished, missing or held under a live lease.

    Takes over a running job whose lease expired (its worker died). A job that
    has used up ``max_attempts`` is failed instead. Writes ``job.started``.
    """
    now = timezone.now()
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            return None
        return _claim_locked(job, now)


def job_claim_next() -> Claim | None:
    """Take the oldest queued job that no other worker is taking, or None when there is none.

    The row is locked as it is read, skipping rows other workers hold (PostgreSQL's
    ``FOR UPDATE SKIP LOCKED``; on SQLite the IMMEDIATE transaction holds the
    database's write lock), so two workers never take the same job, and only a
    ``queued`` job is taken: a running one, live or not, is the sweeper's. Sets the
    audit context to the job's origin (request id, principal) for ``job.started``
    and the run; the caller restores its own afterwards.
    """
    while True:
        now = timezone.now()
        with transaction.atomic():
            job = Job.objects.select_for_update(skip_locked=True).filter(status=JobStatus.QUEUED).order_by("pk").first()
            if job is None:
                return None
            act_for(job)
            claim = _claim_locked(job, now)
        if claim is not None:
            return claim
        # it had used up its attempts and was failed: look at the next one


def jobs_waiting() -> bool:
    """Whether any job is queued (a draining worker rings for help while there is more to do)."""
    return Job.objects.filter(status=JobStatus.QUEUED).exists()


def job_report(claim: Claim, *, progress: int, message: str = "") -> bool:
    """Record progress and renew the lease. False when the lease was lost: stop working.

    Not audited: progress is not a state change anyone needs to account for.
    """
    now = timezone.now()
    updated = Job.objects.filter(pk=claim.job.pk, lease_token=claim.token, status=JobStatus.RUNNING).update(
        progress=max(0, min(100, int(progress))),
        message=message[:500],
        lease_expires_at=now + timedelta(seconds=settings.ASSAY_JOB_LEASE_SECONDS),
        updated_at=now,
    )
    return bool(updated)


def job_finish(claim: Claim, *, ok: bool, result: Any = None, error: str = "", message: str = "") -> bool:
    """Mark the job succeeded or failed, if this claim still holds it; else do nothing and return False.

    Writes ``job.succeeded`` or ``job.failed``.
    """
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=claim.job.pk).first()
        if job is None or job.lease_token != claim.token or job.status != JobStatus.RUNNING:
            logger.warning("job %s: finish ignored, the lease was taken over", claim.job.pk)
            return False
        job.status = JobStatus.SUCCEEDED if ok else JobStatus.FAILED
        job.progress = 100 if ok else job.progress
        job.result = result
        job.error = error[:10000]
        job.message = (message or ("done" if ok else "failed"))[:500]
        job.finished_at = timezone.now()
        job.lease_expires_at = None
        job.save()
        audit.record(
            action="job.succeeded" if ok else "job.failed",
            outcome=Outcome.SUCCESS if ok else Outcome.FAILED,
            target=job,
            after={"status": job.status, "attempt": job.attempts},
            related=(job.target_type, job.target_id, ""),
            reason=error[:2000],
        )
        return True


def job_sweep() -> list[int]:
    """Re-queue running jobs whose lease expired and re-send queued jobs nobody picked up.

    A running job under a live lease is never touched, so a slow job that keeps
    reporting is not run twice. An expired job goes back to ``queued``
    (``job.requeued``), or to ``failed`` when it has used up its attempts
    (``job.failed``). A queued job whose message seems lost (queued longer than
    ``ASSAY_JOB_QUEUED_GRACE_SECONDS``) is only re-sent: its state does not
    change, so nothing is audited and a long broker outage does not flood the
    trail. Tasks are sent after commit. Returns the ids of the jobs re-sent.
    """
    now = timezone.now()
    grace = now - timedelta(seconds=settings.ASSAY_JOB_QUEUED_GRACE_SECONDS)
    expired = Q(status=JobStatus.RUNNING, lease_expires_at__lt=now)
    unclaimed = Q(status=JobStatus.QUEUED) & (Q(dispatched_at__lt=grace) | Q(dispatched_at__isnull=True))
    resend: list[int] = []
    with transaction.atomic():
        stale = Job.objects.select_for_update(skip_locked=True).filter(expired | unclaimed).order_by("pk")
        for job in stale[:SWEEP_BATCH]:
            if job.status == JobStatus.QUEUED:
                job.dispatched_at = now
                job.save(update_fields=["dispatched_at", "updated_at"])
                logger.info("job %s: never picked up, sent again", job.pk)
                resend.append(job.pk)
                continue
            if job.attempts >= job.max_attempts:
                _give_up(job, now)
                continue
            lost = {"status": job.status, "worker": job.worker, "attempt": job.attempts}
            job.status = JobStatus.QUEUED
            job.lease_token = ""
            job.lease_expires_at = None
            job.dispatched_at = now
            job.message = f"worker lost; re-queued after attempt {job.attempts} of {job.max_attempts}"
            job.save()
            audit.record(
                action="job.requeued",
                target=job,
                before=lost,
                after={"status": job.status},
                related=(job.target_type, job.target_id, ""),
                reason="lease expired: the worker running it stopped reporting",
            )
            resend.append(job.pk)
        for job_id in resend:
            transaction.on_commit(lambda job_id=job_id: _dispatch(job_id))
    return resend


def job_cancel(*, job_id: int, reason: str) -> bool:
    """Cancel a queued or running job in the caller's transaction; its worker stops at its next report.

    Clearing the lease makes ``job_report`` answer False to the worker holding it, so the
    handler stops (``LeaseLost``) and its finish is ignored. Audited ``job.cancelled``. False
    when the job is already finished.
    """
    job = Job.objects.select_for_update().filter(pk=job_id).first()
    if job is None or job.status in FINISHED:
        return False
    before = {"status": job.status}
    job.status = JobStatus.CANCELLED
    job.message = "cancelled"
    job.error = reason[:10000]
    job.finished_at = timezone.now()
    job.lease_token = ""
    job.lease_expires_at = None
    job.save()
    audit.record(
        action="job.cancelled",
        target=job,
        before=before,
        after={"status": job.status},
        related=(job.target_type, job.target_id, ""),
        reason=reason,
    )
    return True


def worker_heartbeat(*, name: str, kind: str, beat: bool, started_at) -> None:
    """Record that this worker is alive now, and forget workers not seen for ``ASSAY_WORKER_FORGET_SECONDS``.

    Not audited: a heartbeat is an operational signal, not a change anyone must account for.
    """
    now = timezone.now()
    updated = WorkerHeartbeat.objects.filter(name=name).update(last_seen=now, beat=beat, kind=kind)
    if not updated:
        WorkerHeartbeat.objects.update_or_create(
            name=name, defaults={"kind": kind, "beat": beat, "started_at": started_at, "last_seen": now}
        )
    forget = now - timedelta(seconds=settings.ASSAY_WORKER_FORGET_SECONDS)
    WorkerHeartbeat.objects.filter(last_seen__lt=forget).delete()


def worker_stopped(*, name: str) -> None:
    """Delete this worker's heartbeat row as it stops cleanly (a killed worker's row ages out)."""
    WorkerHeartbeat.objects.filter(name=name).delete()
