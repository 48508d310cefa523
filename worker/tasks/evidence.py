"""Evidence jobs: compute one evidence run (the ``bias`` kind) from its dataset.

The handler loads the run by id and leaves it alone once finished (so running
the job twice is a no-op), marks it running, copies the dataset to a private
temporary folder while re-hashing it (the bytes must be the ones whose digest
the run recorded), reads only the columns it needs in chunks with pyarrow,
counts each chunk with the bias engine and merges the counts exactly, then
stores the ``assay.bias/v1`` summary. A problem with the data (labels that are
not binary, a missing column, changed bytes) fails the run with the engine's
message while the job succeeds: the run failed for a reason, the
infrastructure did not. Anything unexpected fails the run with "internal
error" (the traceback goes to the log, never to the run) and fails the job.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from apps.evidence import runs
from apps.evidence.choices import EvidenceKind
from apps.evidence.models import EvidenceRun
from apps.evidence.services import RUN_JOB
from apps.jobs.models import Job
from apps.registry.models import Dataset
from apps.registry.storage import ObjectMissing, copy_bounded, get_storage, open_reference
from worker.engines import bias, loaders
from worker.runner import JobFailed, LeaseLost, handles

logger = logging.getLogger(__name__)

Report = Callable[[int, str], None]
INTERNAL_ERROR = "internal error"


class DataProblem(Exception):
    """The run's inputs cannot give the evidence asked for; the message says why, for people."""


def engine_versions(*packages: str) -> dict[str, str]:
    """Installed versions of the packages an engine relies on (fairlearn: the definition the numbers follow)."""
    found = {}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _throttled(report: Report, low: int, high: int, message: str) -> Callable[[float], None]:
    """Map a 0..1 fraction onto low..high percent, reporting (and renewing the lease) at most twice a second."""
    last = [0.0]

    def progress(fraction: float) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5:
            last[0] = now
            report(low + int((high - low) * min(1.0, fraction)), message)

    return progress


def _fetch_dataset(dataset: Dataset, expected_sha256: str, target: Path, report: Report) -> None:
    """Copy the dataset's bytes to ``target``; ``DataProblem`` when they are gone or changed."""
    try:
        source = open_reference(dataset.uri) if dataset.is_reference else get_storage().open(dataset.uri)
    except ObjectMissing as exc:
        raise DataProblem(f"the dataset's file is missing from storage: {exc}")
    progress = _throttled(report, 5, 25, "fetching the dataset")
    total = max(1, dataset.size or 1)
    try:
        with open(target, "wb") as out:
            digest, _ = copy_bounded(source, out, limit=None, progress=lambda done: progress(done / total))
    finally:
        source.close()
    if expected_sha256 and digest != expected_sha256:
        raise DataProblem(
            f"the dataset's bytes changed since the run was requested (sha256 {digest}, expected {expected_sha256})"
        )


def _as_column_type(value: Any, arrow_type) -> Any:
    """A label given in JSON, as the column's values hold it ("1" for an integer column is 1)."""
    import pyarrow as pa

    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if pa.types.is_integer(arrow_type):
            try:
                return int(value)
            except ValueError:
                return value
        if pa.types.is_floating(arrow_type):
            try:
                return float(value)
            except ValueError:
                return value
        if pa.types.is_boolean(arrow_type) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        return value
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return str(value)
    return value


def compute_bias(path: Path, fmt: str, parameters: dict, row_count: int | None, report: Report) -> dict:
    """The ``assay.bias/v1`` summary of a dataset file, read in chunks and merged exactly."""
    label, prediction = parameters["label_column"], parameters["prediction_column"]
    sensitive = list(parameters["sensitive_columns"])
    progress = _throttled(report, 30, 90, "counting per group")
    merged: bias.BiasPartial | None = None
    positive, reference, rows = parameters.get("positive_label"), None, 0
    for batch in loaders.iter_columns(path, fmt, [label, prediction, *sensitive]):
        if batch.num_rows == 0:
            continue
        if reference is None:  # types are known from the first batch on
            schema = batch.schema
            positive = _as_column_type(parameters.get("positive_label"), schema.field(label).type)
            reference = {
                name: _as_column_type(value, schema.field(name).type)
                for name, value in (parameters.get("reference_groups") or {}).items()
            }
        part = bias.bias_partial(
            batch.column(label),
            batch.column(prediction),
            {name: batch.column(name) for name in sensitive},
            positive_label=positive,
        )
        merged = part if merged is None else bias.merge_partials([merged, part])
        rows += batch.num_rows
        progress(rows / max(1, row_count or rows))
    if merged is None:
        raise DataProblem("the dataset has no rows: the bias report needs at least one row")
    report(92, "summarising")
    return bias.summary(merged, positive_label=positive, reference=reference)


@handles(RUN_JOB)
def run_evidence(job: Job, report: Report) -> dict:
    """Compute one evidence run; a finished run is left alone."""
    run = EvidenceRun.objects.select_related("dataset").filter(pk=job.params["run_id"]).first()
    if run is None:
        raise JobFailed("the evidence run no longer exists")
    run = runs.evidence_run_start(run_id=run.pk)
    if run is None:
        return {"skipped": "the run is already finished"}
    versions = engine_versions("numpy", "pyarrow", "fairlearn")
    try:
        if run.kind != EvidenceKind.BIAS:
            raise DataProblem(f"evidence of kind {run.kind!r} is not available yet")
        dataset = run.dataset
        report(5, "fetching the dataset")
        with tempfile.TemporaryDirectory(prefix="assay-evidence-") as folder:
            path = Path(folder) / "dataset"
            _fetch_dataset(dataset, run.input_digests.get("dataset", ""), path, report)
            report(30, "reading columns")
            summary = compute_bias(path, dataset.format, run.parameters, dataset.row_count, report)
    except (DataProblem, loaders.LoadError, ValueError) as exc:
        reason = str(exc)
        runs.evidence_run_fail(run_id=run.pk, reason=reason, engine_versions=versions)
        return {"status": "failed", "reason": reason}
    except LeaseLost:
        raise  # another worker runs it now
    except Exception:
        logger.exception("evidence run %s (%s) failed unexpectedly", run.public_id, run.kind)
        runs.evidence_run_fail(run_id=run.pk, reason=INTERNAL_ERROR, engine_versions=versions)
        raise JobFailed(INTERNAL_ERROR)
    report(95, "recording the summary")
    runs.evidence_run_succeed(run_id=run.pk, summary=summary, engine_versions=versions)
    return {"status": "succeeded", "n_rows": summary["n_rows"]}
