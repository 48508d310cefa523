"""Background jobs: the database remembers unfinished work, Celery only carries it."""

from __future__ import annotations

import uuid

from django.db import models


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class Job(models.Model):
    """One unit of background work with status, progress and a lease.

    A worker claims a job by setting ``status=running`` with a fresh ``lease_token``
    and ``lease_expires_at``; it renews the lease each time it reports progress.
    The sweeper re-queues a running job only after its lease has expired, so a
    killed worker delays the job but never loses it, and a slow live job is never
    run twice. A finish from a worker whose lease was taken over is ignored.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=64, db_index=True)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    message = models.CharField(max_length=500, blank=True)
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=5)
    lease_token = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    worker = models.CharField(max_length=255, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    principal = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["target_type", "target_id"], name="job_target_idx"),
            # Workers take the oldest queued job (status = 'queued' ORDER BY id); it also serves every
            # lookup by status, so it replaces the status column's own index(es).
            models.Index(fields=["status", "id"], name="job_status_id_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"

    def audit_ref(self) -> tuple[str, str, str]:
        return ("job", str(self.pk), self.kind)

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED


class WorkerHeartbeat(models.Model):
    """One row per running worker process, rewritten every few seconds (``ASSAY_WORKER_HEARTBEAT_SECONDS``).

    ``/api/v1/health/`` and the dashboard read it to tell whether any worker is alive. A worker
    deletes its own row when it stops cleanly; rows of workers that died are deleted by the live
    workers once not seen for ``ASSAY_WORKER_FORGET_SECONDS``.
    """

    name = models.CharField(max_length=255, unique=True)  # host:pid
    kind = models.CharField(max_length=32)  # "database" (python -m worker) or "celery"
    beat = models.BooleanField(default=False)  # this worker runs the periodic jobs
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-last_seen"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind}, last seen {self.last_seen:%H:%M:%S})"
