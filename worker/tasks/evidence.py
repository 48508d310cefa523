"""Evidence jobs: compute one evidence run (bias, PII scan, explainability) from its dataset and model.

The handler loads the run by id and leaves it alone once finished (so running
the job twice is a no-op), marks it running, has the engine (``worker.evidence``)
copy the dataset (and the model artifact, when the run needs it) to a private
temporary folder while re-hashing it (the bytes must be the ones whose digest the
run recorded), compute the kind's summary and store the result files (tables, the
SHAP values, a scrubbed copy of the dataset), then records the summary. A problem
with the data (labels that are not binary, a missing column, changed bytes, a
model that cannot score) fails the run with the engine's message while the job
succeeds: the run failed for a reason, the infrastructure did not. Anything
unexpected fails the run with "internal error" (the traceback goes to the log,
never to the run) and fails the job. A run cancelled meanwhile stops at the
next progress report, and whatever it had stored is removed.
"""

from __future__ import annotations

import logging

from apps.evidence import runs
from apps.evidence.models import EvidenceRun
from apps.evidence.services import RUN_JOB
from apps.jobs.models import Job
from worker import evidence
from worker.compute import DataProblem, Report
from worker.engines import loaders
from worker.runner import JobFailed, LeaseLost, handles

logger = logging.getLogger(__name__)

INTERNAL_ERROR = "internal error"


@handles(runs.CHUNK_JOB)
def run_evidence_chunk(job: Job, report: Report) -> dict:
    """Compute one chunk of a run and store its partial; the last chunk done merges them all.

    A finished chunk, or a chunk of a finished (failed, cancelled) run, is left alone.
    A problem with the data fails the whole run, which cancels its other chunks.
    """
    chunk = runs.evidence_chunk_start(chunk_id=job.params["chunk_id"])
    if chunk is None:
        return {"skipped": "the chunk or its run is already finished"}
    run = EvidenceRun.objects.select_related("dataset", "version").get(pk=chunk.run_id)
    versions = evidence.run_versions(run)
    stored = evidence.StoredBytes()
    try:
        report(5, "fetching the dataset")
        partial = evidence.chunk_computed(run, (chunk.row_start, chunk.row_stop), report)
        report(95, "storing the chunk's result")
        outcome = runs.evidence_chunk_complete(
            chunk_id=chunk.pk,
            partial=partial,
            merge=lambda partials: evidence.chunks_merged(run, partials, versions, stored),
        )
        if outcome == "finished":
            stored.discard()
    except (DataProblem, loaders.LoadError, ValueError) as exc:
        stored.discard()
        reason = str(exc)
        runs.evidence_run_fail(run_id=run.pk, reason=reason, engine_versions=versions, chunk_id=chunk.pk)
        return {"status": "failed", "reason": reason}
    except LeaseLost:
        stored.discard()
        raise
    except Exception:
        stored.discard()
        logger.exception("chunk %s of evidence run %s failed unexpectedly", chunk.index, run.public_id)
        runs.evidence_run_fail(run_id=run.pk, reason=INTERNAL_ERROR, engine_versions=versions, chunk_id=chunk.pk)
        raise JobFailed(INTERNAL_ERROR)
    return {"chunk": chunk.index, "outcome": outcome}


@handles(RUN_JOB)
def run_evidence(job: Job, report: Report) -> dict:
    """Compute one evidence run, or split a large one into chunks; a finished (or cancelled) run is left alone."""
    run = EvidenceRun.objects.select_related("dataset", "version").filter(pk=job.params["run_id"]).first()
    if run is None:
        raise JobFailed("the evidence run no longer exists")
    run = runs.evidence_run_start(run_id=run.pk)
    if run is None:
        return {"skipped": "the run is already finished"}
    ranges = evidence.chunk_ranges(run)
    if ranges:
        chunks = runs.evidence_run_plan_chunks(run_id=run.pk, ranges=ranges)
        return {"chunks": len(chunks)}
    versions = evidence.run_versions(run)
    stored = evidence.StoredBytes()
    try:
        report(5, "fetching the dataset")
        summary, files, scrubbed = evidence.run_computed(run, report, stored)
        engine = summary.get("engine") if isinstance(summary.get("engine"), dict) else {}
        # the engine's own record (spaCy pipeline, shap, ...) joins the installed versions; only its text fields
        versions = {**versions, **{k: v for k, v in engine.items() if k not in versions and isinstance(v, str)}}
        report(95, "recording the summary")
        if not runs.evidence_run_succeed(
            run_id=run.pk, summary=summary, engine_versions=versions, files=files, scrubbed=scrubbed
        ):
            stored.discard()
            return {"skipped": "the run was finished meanwhile (cancelled)"}
    except (DataProblem, loaders.LoadError, ValueError) as exc:
        stored.discard()
        reason = str(exc)
        runs.evidence_run_fail(run_id=run.pk, reason=reason, engine_versions=versions)
        return {"status": "failed", "reason": reason}
    except LeaseLost:
        stored.discard()
        raise  # cancelled, or another worker runs it now
    except Exception:
        stored.discard()
        logger.exception("evidence run %s (%s) failed unexpectedly", run.public_id, run.kind)
        runs.evidence_run_fail(run_id=run.pk, reason=INTERNAL_ERROR, engine_versions=versions)
        raise JobFailed(INTERNAL_ERROR)
    return {"status": "succeeded", "kind": run.kind, "files": [f.name for f in files]}
