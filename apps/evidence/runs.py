"""State changes the evidence worker makes: a run starts, then succeeds or fails.

Each runs in one transaction under the run's row lock and writes its audit
event there (``evidence_run.started``, ``evidence_run.succeeded``,
``evidence_run.failed``). A finished run (succeeded, failed, cancelled) is
never changed again, so a job run twice is a no-op. The actor is the system's
evidence worker; the job's origin context keeps the requester's request id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from apps.audit import services as audit
from apps.audit.choices import Outcome
from apps.core.principals import Principal
from apps.registry.services import dataset_create_derived
from apps.registry.storage import Stored

from .choices import FINISHED, RunStatus
from .models import EvidenceFile, EvidenceRun

WORKER = Principal.system("evidence-worker")


def _locked(run_id: int) -> EvidenceRun | None:
    return (
        EvidenceRun.objects.select_for_update(of=("self",))
        .select_related("version__model", "dataset")
        .filter(pk=run_id)
        .first()
    )


@transaction.atomic
def evidence_run_start(*, run_id: int) -> EvidenceRun | None:
    """Mark a queued (or interrupted running) run running; None when it is gone or finished. Audited."""
    run = _locked(run_id)
    if run is None or run.status in FINISHED:
        return None
    before = run.status
    run.status = RunStatus.RUNNING
    run.started_at = timezone.now()
    run.save(update_fields=["status", "started_at", "updated_at"])
    audit.record(
        action="evidence_run.started",
        actor=WORKER,
        target=run,
        related=run.version or run.dataset,
        before={"status": before},
        after={"status": RunStatus.RUNNING},
    )
    return run


@dataclass(frozen=True)
class ResultFile:
    """A file the worker stored for a run (``stored`` is its storage key, size and digest)."""

    name: str
    title: str
    content_type: str
    stored: Stored


@dataclass(frozen=True)
class ScrubbedCopy:
    """The scrubbed dataset a PII scan wrote: stored bytes, rows and columns (same as the source's)."""

    stored: Stored
    row_count: int


@transaction.atomic
def evidence_run_succeed(
    *,
    run_id: int,
    summary: dict,
    engine_versions: dict,
    files: Sequence[ResultFile] = (),
    scrubbed: ScrubbedCopy | None = None,
) -> bool:
    """Store the summary, the engines' versions and the result files; the run succeeded.

    A scrubbed copy is registered as a new dataset linked to the scanned one, in the same
    transaction (``dataset.created``), and named in the summary's ``scrubbed_dataset``. False
    when the run was already finished (cancelled meanwhile): the caller removes the stored bytes.
    """
    run = _locked(run_id)
    if run is None or run.status in FINISHED:
        return False
    for file in files:
        EvidenceFile.objects.create(
            run=run,
            name=file.name,
            title=file.title,
            content_type=file.content_type,
            key=file.stored.key,
            size=file.stored.size,
            sha256=file.stored.sha256,
        )
    if scrubbed is not None:
        source = run.dataset
        copy = dataset_create_derived(
            actor=WORKER,
            source=source,
            name=f"{source.name} (scrubbed)",
            stored=scrubbed.stored,
            format=source.format,
            row_count=scrubbed.row_count,
            schema=source.schema,
            description=f"PII scrubbed from dataset {source.pk} ({source.name}) by evidence run {run.public_id}.",
            reason=f"scrubbed copy written by PII scan {run.public_id}",
        )
        summary = {**summary, "scrubbed_dataset": {"id": copy.pk, "sha256": copy.sha256, "rows": copy.row_count}}
    run.status = RunStatus.SUCCEEDED
    run.summary = summary
    run.engine_versions = engine_versions
    run.error = ""
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "summary", "engine_versions", "error", "finished_at", "updated_at"])
    audit.record(
        action="evidence_run.succeeded",
        actor=WORKER,
        target=run,
        related=run.version or run.dataset,
        before={"status": RunStatus.RUNNING},
        after={
            "status": RunStatus.SUCCEEDED,
            "schema": summary.get("schema"),
            "engine_versions": engine_versions,
            "files": [f.name for f in files],
        },
    )
    return True


@transaction.atomic
def evidence_run_fail(*, run_id: int, reason: str, engine_versions: dict | None = None) -> bool:
    """The run failed for ``reason`` (a sentence for people). False when it was already finished. Audited."""
    run = _locked(run_id)
    if run is None or run.status in FINISHED:
        return False
    before = run.status
    run.status = RunStatus.FAILED
    run.error = reason
    run.engine_versions = engine_versions or run.engine_versions
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "error", "engine_versions", "finished_at", "updated_at"])
    audit.record(
        action="evidence_run.failed",
        actor=WORKER,
        outcome=Outcome.FAILED,
        target=run,
        related=run.version or run.dataset,
        before={"status": before},
        after={"status": RunStatus.FAILED},
        reason=reason,
    )
    return True
