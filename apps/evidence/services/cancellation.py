"""Cancelling a run that has not finished."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.audit import services as audit
from apps.core.principals import Principal
from apps.jobs import services as jobs

from ..choices import FINISHED, RunStatus
from ..models import EvidenceRun
from ..runs import cancel_chunk_jobs
from .common import RunFinished, _locked_run


@transaction.atomic
def evidence_run_cancel(*, actor: Principal, run_id: Any) -> EvidenceRun:
    """Cancel a queued or running run (and its job): a worker computing it stops at its next progress report.

    Needs ``evidence.request`` on the subject. 409 when the run already finished. Audited
    ``evidence_run.cancelled``; a refusal of access is audited by the error handlers.
    """
    run = _locked_run(actor, run_id, "evidence.request", "evidence_run.cancelled")
    if run.status in FINISHED:
        raise RunFinished(f"The run is {run.status}: only a queued or running run can be cancelled.")
    before = run.status
    run.status = RunStatus.CANCELLED
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "finished_at", "updated_at"])
    if run.job_id:
        jobs.job_cancel(job_id=run.job_id, reason="the evidence run was cancelled")
    cancel_chunk_jobs(run, reason="the evidence run was cancelled")
    audit.record(
        action="evidence_run.cancelled",
        actor=actor,
        target=run,
        related=run.version or run.dataset,
        before={"status": before},
        after={"status": RunStatus.CANCELLED},
    )
    return run
