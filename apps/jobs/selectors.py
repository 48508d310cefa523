"""Reads about the workers and the queue: is any worker alive, how long has the oldest job waited.

Used by ``/api/v1/health/`` (through ``apps.core.health``), the dashboard's banner for admins and
the evidence pages. Two queries at most, and no writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from .models import Job, JobStatus, WorkerHeartbeat


@dataclass(frozen=True)
class WorkerHealth:
    """Whether the background work is being done, with the reasons when it is not."""

    workers_alive: int
    last_seen: datetime | None
    oldest_queued_at: datetime | None
    oldest_queued_seconds: float | None
    reasons: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.reasons

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "workers_alive": self.workers_alive,
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
            "oldest_queued_seconds": self.oldest_queued_seconds,
            "reasons": list(self.reasons),
        }


def workers_alive_count() -> int:
    """How many workers wrote a heartbeat within ``ASSAY_WORKER_STALE_SECONDS`` (one query)."""
    since = timezone.now() - timedelta(seconds=settings.ASSAY_WORKER_STALE_SECONDS)
    return WorkerHeartbeat.objects.filter(last_seen__gte=since).count()


def worker_health() -> WorkerHealth:
    """Degraded when no worker was seen for ``ASSAY_WORKER_STALE_SECONDS`` or the oldest queued job has waited
    longer than ``ASSAY_HEALTH_MAX_QUEUE_AGE_SECONDS``. Two queries, both served by an index."""
    now = timezone.now()
    stale = settings.ASSAY_WORKER_STALE_SECONDS
    since = now - timedelta(seconds=stale)
    beats = WorkerHeartbeat.objects.aggregate(
        newest=Max("last_seen"), alive=Count("id", filter=Q(last_seen__gte=since))
    )
    oldest = Job.objects.filter(status=JobStatus.QUEUED).aggregate(oldest=Min("created_at"))["oldest"]
    reasons = []
    if not beats["alive"]:
        if beats["newest"] is None:
            reasons.append(f"no worker has been seen in the last {stale} s")
        else:
            ago = int((now - beats["newest"]).total_seconds())
            reasons.append(f"no worker has been seen in the last {stale} s (the last one {ago} s ago)")
    waited = round((now - oldest).total_seconds(), 1) if oldest else None
    limit = settings.ASSAY_HEALTH_MAX_QUEUE_AGE_SECONDS
    if waited is not None and waited > limit:
        reasons.append(f"the oldest queued job has waited {int(waited)} s (more than {limit} s)")
    return WorkerHealth(
        workers_alive=beats["alive"] or 0,
        last_seen=beats["newest"],
        oldest_queued_at=oldest,
        oldest_queued_seconds=waited,
        reasons=tuple(reasons),
    )
