"""Evidence jobs: compute one evidence run (bias, PII scan, explainability) from its dataset and model.

The handler loads the run by id and leaves it alone once finished (so running
the job twice is a no-op), marks it running, copies the dataset (and the model
artifact, when the run needs it) to a private temporary folder while re-hashing
it (the bytes must be the ones whose digest the run recorded), computes the
kind's summary with ``worker.compute``, stores the result files (tables, the
SHAP values, a scrubbed copy of the dataset) and then the summary. A problem
with the data (labels that are not binary, a missing column, changed bytes, a
model that cannot score) fails the run with the engine's message while the job
succeeds: the run failed for a reason, the infrastructure did not. Anything
unexpected fails the run with "internal error" (the traceback goes to the log,
never to the run) and fails the job. A run cancelled meanwhile stops at the
next progress report, and whatever it had stored is removed.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from django.conf import settings

from apps.core.storage import ObjectMissing, copy_bounded, get_storage, open_reference
from apps.evidence import runs
from apps.evidence.choices import EvidenceKind
from apps.evidence.models import EvidenceRun
from apps.evidence.services import RUN_JOB
from apps.jobs.models import Job
from apps.registry.choices import ArtifactFormat
from apps.registry.models import Dataset, ModelVersion
from worker import compute
from worker.compute import DataProblem, Report, _throttled
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
    versions = engine_versions(*KIND_PACKAGES.get(run.kind, ()), *_model_packages(run))
    stored = _Stored()
    rows = (chunk.row_start, chunk.row_stop)
    dataset = run.dataset
    try:
        report(5, "fetching the dataset")
        with tempfile.TemporaryDirectory(prefix="assay-evidence-") as folder:
            path = Path(folder) / "dataset"
            _fetch_dataset(dataset, run.input_digests.get("dataset", ""), path, report)
            if run.kind == EvidenceKind.BIAS:
                score = None
                if run.parameters.get("predictions") == "model":
                    score = _model_scorer(run.version, run.input_digests.get("model_version", ""), Path(folder), report)
                partial = compute.bias_partial_of(
                    path, dataset.format, run.parameters, dataset.row_count, report, score, rows=rows
                )
            else:
                scanned = compute.pii_scan_of(
                    path, dataset.format, run.parameters, dataset.schema, dataset.row_count, report, rows=rows
                )
                partial = scanned.to_json()

        def merge(partials: list) -> runs.Merged:
            if run.kind == EvidenceKind.BIAS:
                summary = compute.bias_summary_of(partials)
            else:
                summary = compute.pii_summary_of(partials, run.parameters)
            return runs.Merged(summary=summary, engine_versions=versions, files=_result_files(run, summary, stored))

        report(95, "storing the chunk's result")
        outcome = runs.evidence_chunk_complete(chunk_id=chunk.pk, partial=partial, merge=merge)
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
    ranges = chunk_ranges(run)
    if ranges:
        chunks = runs.evidence_run_plan_chunks(run_id=run.pk, ranges=ranges)
        return {"chunks": len(chunks)}
    versions = engine_versions(*KIND_PACKAGES.get(run.kind, ()), *_model_packages(run))
    stored = _Stored()
    try:
        report(5, "fetching the dataset")
        with tempfile.TemporaryDirectory(prefix="assay-evidence-") as folder:
            summary, files, scrubbed = _compute(run, Path(folder), report, stored)
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
