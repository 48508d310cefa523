"""When a verification may be asked for again: the object is pending and no job will decide it.

A verification job fails without touching its version or dataset when the fault is not the
bytes' (storage unreachable, the worker raised unexpectedly, every worker running it died):
the object stays ``pending_verification`` and only a new job can settle it. Shared by
``version_reverify`` and ``dataset_reverify`` and by the dashboard pages that offer the retry.
"""

from __future__ import annotations

from apps.audit import services as audit
from apps.core.errors import InvalidTransition
from apps.core.principals import Principal
from apps.jobs import services as jobs
from apps.jobs.models import Job, JobStatus

PENDING = "pending_verification"  # VersionStatus and DatasetStatus share this value
# A job that ended without deciding anything; a succeeded job already settled its object.
UNSETTLED = (JobStatus.FAILED, JobStatus.CANCELLED)


def verification_stuck(obj, job: Job | None) -> bool:
    """True when ``obj`` (a version or dataset) is pending and its job ended without settling it, or is gone."""
    return obj.status == PENDING and (job is None or job.status in UNSETTLED)


def job_ref(job: Job | None) -> dict:
    """The job as an audit event's before/after: its id and status."""
    return {"verification_job": job.pk if job else None, "job_status": job.status if job else None}


def refuse_unless_stuck(obj, job: Job | None, *, label: str, waiting_note: str = "") -> None:
    """Raise ``InvalidTransition`` (409) saying why ``obj`` needs no new verification job now.

    ``waiting_note`` explains a pending object whose job succeeded (a predictions-only
    version waits for its evaluation dataset).
    """
    if verification_stuck(obj, job):
        return
    if obj.status != PENDING:
        subject = label[:1].upper() + label[1:]
        raise InvalidTransition(f"{subject} is {obj.get_status_display().lower()}; nothing to verify.")
    if job.status == JobStatus.QUEUED:
        raise InvalidTransition(f"Verification of {label} is already queued (job {job.public_id}); wait for it.")
    if job.status == JobStatus.RUNNING:
        raise InvalidTransition(
            f"Verification of {label} is still running (job {job.public_id}, {job.progress}%); wait for it."
        )
    raise InvalidTransition(
        waiting_note or f"The verification job of {label} succeeded (job {job.public_id}); nothing to retry."
    )


def restart_verification(
    obj, previous: Job | None, *, actor: Principal, kind: str, params: dict, action: str, related
) -> Job:
    """Queue a new verification job for ``obj`` (locked by the caller, checked with
    ``refuse_unless_stuck``), point ``obj`` at it, and audit ``action`` with the old and new job
    and the old job's error. The job is sent after the caller's transaction commits."""
    job = jobs.job_enqueue(kind=kind, target=obj, params=params, actor=actor)
    obj.verification_job = job
    obj.save(update_fields=["verification_job", "updated_at"])
    audit.record(
        action=action,
        actor=actor,
        target=obj,
        related=related,
        before=job_ref(previous),
        after=job_ref(job),
        reason=previous.error[:2000] if previous else "the verification job no longer exists",
        artifact_sha256=obj.sha256,
    )
    return job
