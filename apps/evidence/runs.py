"""State changes the evidence worker makes: a run starts, is split into chunks, then succeeds or fails.

Each runs in one transaction under the run's row lock and writes its audit
event there (``evidence_run.started``, ``evidence_run.succeeded``,
``evidence_run.failed``); a finished run also publishes the event of the same
name there (``apps.jobs.events``: the releases re-judge, the team's webhooks are
told). A finished run (succeeded, failed, cancelled) is never changed again, so
a job run twice is a no-op. The actor is the system's
evidence worker; the job's origin context keeps the requester's request id.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from apps.audit import services as audit
from apps.audit.choices import Outcome
from apps.core.principals import Principal
from apps.core.storage import Stored
from apps.jobs import events
from apps.jobs import services as jobs
from apps.jobs.models import FINISHED as JOB_FINISHED
from apps.registry.services import dataset_create_derived

from .choices import FINISHED, RunStatus
from .models import EvidenceChunk, EvidenceFile, EvidenceRun

WORKER = Principal.system("evidence-worker")
CHUNK_JOB = "evidence.chunk"


def _publish_finished(run: EvidenceRun, event: str) -> None:
    """Publish ``evidence_run.succeeded`` / ``evidence_run.failed`` in this transaction (dropped on rollback).

    The payload names the run and its subject by id and, as they were when the run finished, by
    name: what the releases re-judge and what the owning team's webhooks are told.
    """
    subject: dict = {"type": "model_version" if run.version_id else "dataset"}
    if run.version_id:
        subject.update(model=run.version.model.name, version=run.version.number)
    if run.dataset_id:
        subject.update(dataset={"id": run.dataset_id, "name": run.dataset.name})
    payload = {
        "run_id": run.pk,
        "run": str(run.public_id),
        "version_id": run.version_id,
        "dataset_id": run.dataset_id,
        "team_id": run.owner_team_id,
        "team": run.owner_team.name,
        "kind": run.kind,
        "status": run.status,
        "subject": subject,
    }
    if run.status == RunStatus.FAILED:
        payload["reason"] = run.error
    events.publish(event, payload=payload, target=run)


def _locked(run_id: int) -> EvidenceRun | None:
    return (
        EvidenceRun.objects.select_for_update(of=("self",))
        .select_related("version__model", "dataset", "owner_team")
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
    _publish_finished(run, "evidence_run.succeeded")
    return True


@transaction.atomic
def evidence_run_fail(
    *, run_id: int, reason: str, engine_versions: dict | None = None, chunk_id: int | None = None
) -> bool:
    """The run failed for ``reason`` (a sentence for people). False when it was already finished. Audited.

    From a chunk (``chunk_id``): that chunk is marked failed, and the run's other unfinished
    chunks are cancelled with their jobs, since their work can no longer give a report.
    """
    run = _locked(run_id)
    if run is None or run.status in FINISHED:
        return False
    before = run.status
    run.status = RunStatus.FAILED
    run.error = reason
    run.engine_versions = engine_versions or run.engine_versions
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "error", "engine_versions", "finished_at", "updated_at"])
    if chunk_id is not None:
        EvidenceChunk.objects.filter(pk=chunk_id, run=run).update(
            status=RunStatus.FAILED, finished_at=run.finished_at, updated_at=run.finished_at
        )
    cancel_chunk_jobs(run, reason=f"another chunk of the run failed: {reason}")
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
    _publish_finished(run, "evidence_run.failed")
    return True


def cancel_chunk_jobs(run: EvidenceRun, *, reason: str) -> int:
    """Cancel the jobs of a run's unfinished chunks (the run failed or was cancelled); returns how many."""
    cancelled = 0
    for chunk in EvidenceChunk.objects.filter(run=run).exclude(status__in=FINISHED).select_related("job"):
        chunk.status = RunStatus.CANCELLED
        chunk.finished_at = timezone.now()
        chunk.save(update_fields=["status", "finished_at", "updated_at"])
        if chunk.job_id and chunk.job.status not in JOB_FINISHED:
            cancelled += jobs.job_cancel(job_id=chunk.job_id, reason=reason)
    return cancelled


@transaction.atomic
def evidence_run_plan_chunks(*, run_id: int, ranges: Sequence[tuple[int, int]]) -> list[EvidenceChunk]:
    """Split a running run into chunks of rows, one job each, sent to workers after commit.

    Idempotent: a run that already has chunks (its planning job ran again after a worker died)
    keeps them, so finished chunks are never computed twice. Audited ``evidence_run.chunked``.
    """
    run = _locked(run_id)
    if run is None or run.status in FINISHED:
        return []
    existing = list(EvidenceChunk.objects.filter(run=run).order_by("index"))
    if existing:
        return existing
    chunks = []
    for index, (start, stop) in enumerate(ranges):
        chunk = EvidenceChunk.objects.create(run=run, index=index, row_start=start, row_stop=stop)
        chunk.job = jobs.job_enqueue(kind=CHUNK_JOB, target=run, params={"run_id": run.pk, "chunk_id": chunk.pk})
        chunk.save(update_fields=["job", "updated_at"])
        chunks.append(chunk)
    audit.record(
        action="evidence_run.chunked",
        actor=WORKER,
        target=run,
        related=run.version or run.dataset,
        after={"chunks": len(chunks), "rows": [[start, stop] for start, stop in ranges]},
    )
    return chunks


@transaction.atomic
def evidence_chunk_start(*, chunk_id: int) -> EvidenceChunk | None:
    """Mark a chunk running; None when it, or its run, is finished (nothing to compute). Not audited: the
    chunk's job writes ``job.started``."""
    chunk = EvidenceChunk.objects.select_for_update(of=("self",)).select_related("run").filter(pk=chunk_id).first()
    if chunk is None or chunk.status in FINISHED or chunk.run.status in FINISHED:
        return None
    chunk.status = RunStatus.RUNNING
    chunk.save(update_fields=["status", "updated_at"])
    return chunk


@dataclass(frozen=True)
class Merged:
    """What merging every chunk's partial gave: the summary, the engines' versions and the result files."""

    summary: dict
    engine_versions: dict
    files: Sequence[ResultFile] = ()


@transaction.atomic
def evidence_chunk_complete(*, chunk_id: int, partial: dict, merge: Callable[[list[dict]], Merged]) -> str:
    """Store a chunk's partial result; the last chunk to finish merges them all and the run succeeds.

    Locks the run row first (every chunk takes the same lock, in the same order), so exactly
    one chunk sees all the others done and merges; the merge and the run's success commit
    together. Returns ``"merged"``, ``"stored"`` (others still work) or ``"finished"`` (the run
    was already finished, e.g. cancelled: nothing stored).
    """
    chunk = EvidenceChunk.objects.filter(pk=chunk_id).values("run_id").first()
    if chunk is None:
        return "finished"
    run = _locked(chunk["run_id"])
    chunk = EvidenceChunk.objects.select_for_update(of=("self",)).get(pk=chunk_id)
    if run is None or run.status in FINISHED or chunk.status in FINISHED:
        return "finished"
    chunk.status = RunStatus.SUCCEEDED
    chunk.partial = partial
    chunk.finished_at = timezone.now()
    chunk.save(update_fields=["status", "partial", "finished_at", "updated_at"])
    if EvidenceChunk.objects.filter(run=run).exclude(status=RunStatus.SUCCEEDED).exists():
        return "stored"
    partials = list(EvidenceChunk.objects.filter(run=run).order_by("index").values_list("partial", flat=True))
    merged = merge(partials)
    evidence_run_succeed(
        run_id=run.pk, summary=merged.summary, engine_versions=merged.engine_versions, files=merged.files
    )
    # A PII partial keeps keyed fingerprints of sampled values: once merged, nothing needs them.
    EvidenceChunk.objects.filter(run=run).update(partial=None)
    return "merged"


def run_progress(run: EvidenceRun) -> tuple[int, str]:
    """(percent, message) of a run: its job's, or for a chunked run the mean of its chunks' jobs."""
    chunks = list(run.chunks.all())
    if not chunks:
        return (run.job.progress, run.job.message) if run.job_id else (0, "")
    done = sum(1 for c in chunks if c.status == RunStatus.SUCCEEDED)
    total = sum(100 if c.status == RunStatus.SUCCEEDED else (c.job.progress if c.job_id else 0) for c in chunks)
    return total // len(chunks), f"{done} of {len(chunks)} chunks done"
