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

import numpy as np

from apps.evidence import runs
from apps.evidence.choices import EvidenceKind
from apps.evidence.models import EvidenceRun
from apps.evidence.services import RUN_JOB
from apps.jobs.models import Job
from apps.registry.choices import ArtifactFormat
from apps.registry.models import Dataset, ModelVersion
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


def _fetch(
    uri: str,
    *,
    is_reference: bool,
    size: int | None,
    expected_sha256: str,
    target: Path,
    what: str,
    progress: Callable[[float], None],
) -> None:
    """Copy stored or referenced bytes to ``target`` while re-hashing them; ``DataProblem`` when gone or changed."""
    try:
        source = open_reference(uri) if is_reference else get_storage().open(uri)
    except ObjectMissing as exc:
        raise DataProblem(f"the {what}'s file is missing from storage: {exc}")
    total = max(1, size or 1)
    try:
        with open(target, "wb") as out:
            digest, _ = copy_bounded(source, out, limit=None, progress=lambda done: progress(done / total))
    finally:
        source.close()
    if expected_sha256 and digest != expected_sha256:
        raise DataProblem(
            f"the {what}'s bytes changed since the run was requested (sha256 {digest}, expected {expected_sha256})"
        )


def _fetch_dataset(dataset: Dataset, expected_sha256: str, target: Path, report: Report) -> None:
    """Copy the dataset's bytes to ``target``; ``DataProblem`` when they are gone or changed."""
    _fetch(
        dataset.uri,
        is_reference=dataset.is_reference,
        size=dataset.size,
        expected_sha256=expected_sha256,
        target=target,
        what="dataset",
        progress=_throttled(report, 5, 20, "fetching the dataset"),
    )


def _model_scorer(version: ModelVersion, expected_sha256: str, folder: Path, report: Report) -> loaders.Scorer:
    """Copy the version's artifact next to the dataset (re-hashed as verification does) and load it once to score."""
    path = folder / "artifact"
    _fetch(
        version.artifact_uri,
        is_reference=version.artifact_is_reference,
        size=version.size,
        expected_sha256=expected_sha256 or version.sha256,
        target=path,
        what="model artifact",
        progress=_throttled(report, 20, 27, "fetching the model"),
    )
    report(27, f"loading the {version.format} model")
    try:
        return loaders.scorer(path, version.format)
    except loaders.LoadError as exc:
        raise DataProblem(f"the model does not load for scoring: {exc}")


def _features(batch, names: list[str]) -> np.ndarray:
    """The feature columns of a batch as one float64 matrix, in the order given."""
    matrix = np.empty((batch.num_rows, len(names)), dtype=np.float64)
    for i, name in enumerate(names):
        try:
            matrix[:, i] = batch.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
        except (TypeError, ValueError):
            raise DataProblem(f"feature column {name!r} is not numeric ({batch.schema.field(name).type}): cannot score")
    return matrix


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


def compute_bias(
    path: Path, fmt: str, parameters: dict, row_count: int | None, report: Report, score: loaders.Scorer | None = None
) -> dict:
    """The ``assay.bias/v1`` summary of a dataset file, read in chunks and merged exactly.

    With ``score`` (the run's predictions come from the model), each chunk's feature columns
    are scored and the predictions counted; otherwise the prediction column is read.
    """
    label, prediction = parameters["label_column"], parameters.get("prediction_column")
    features = list(parameters.get("feature_columns") or []) if score is not None else []
    sensitive = list(parameters["sensitive_columns"])
    progress = _throttled(report, 30, 90, "scoring the model and counting per group" if score else "counting per group")
    merged: bias.BiasPartial | None = None
    positive, reference, rows = parameters.get("positive_label"), None, 0
    wanted = [label, *sensitive, *features] if score is not None else [label, prediction, *sensitive]
    for batch in loaders.iter_columns(path, fmt, wanted):
        if batch.num_rows == 0:
            continue
        if reference is None:  # types are known from the first batch on
            schema = batch.schema
            positive = _as_column_type(parameters.get("positive_label"), schema.field(label).type)
            reference = {
                name: _as_column_type(value, schema.field(name).type)
                for name, value in (parameters.get("reference_groups") or {}).items()
            }
        if score is not None:
            try:
                predicted = score(_features(batch, features))
            except loaders.LoadError as exc:
                raise DataProblem(
                    f"the model cannot score the dataset's {len(features)} feature column(s) "
                    f"({', '.join(features)}): {exc}"
                )
        else:
            predicted = batch.column(prediction)
        part = bias.bias_partial(
            batch.column(label),
            predicted,
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


def _model_packages(run: EvidenceRun) -> tuple[str, ...]:
    """The runtime that scores the model, when the run's predictions come from it."""
    if run.parameters.get("predictions") != "model" or run.version is None:
        return ()
    return {
        ArtifactFormat.ONNX: ("onnxruntime",),
        ArtifactFormat.SKOPS: ("scikit-learn", "skops"),
        ArtifactFormat.XGBOOST: ("xgboost",),
        ArtifactFormat.LIGHTGBM: ("lightgbm",),
    }.get(run.version.format, ())


@handles(RUN_JOB)
def run_evidence(job: Job, report: Report) -> dict:
    """Compute one evidence run; a finished run is left alone."""
    run = EvidenceRun.objects.select_related("dataset", "version").filter(pk=job.params["run_id"]).first()
    if run is None:
        raise JobFailed("the evidence run no longer exists")
    run = runs.evidence_run_start(run_id=run.pk)
    if run is None:
        return {"skipped": "the run is already finished"}
    versions = engine_versions("numpy", "pyarrow", "fairlearn", *_model_packages(run))
    try:
        if run.kind != EvidenceKind.BIAS:
            raise DataProblem(f"evidence of kind {run.kind!r} is not available yet")
        dataset = run.dataset
        report(5, "fetching the dataset")
        with tempfile.TemporaryDirectory(prefix="assay-evidence-") as folder:
            path = Path(folder) / "dataset"
            _fetch_dataset(dataset, run.input_digests.get("dataset", ""), path, report)
            score = None
            if run.parameters.get("predictions") == "model":
                if run.version is None or run.version.format == ArtifactFormat.PREDICTIONS_ONLY:
                    raise DataProblem("the run asks for the model's predictions but names no model artifact")
                score = _model_scorer(run.version, run.input_digests.get("model_version", ""), Path(folder), report)
            report(30, "reading columns")
            summary = compute_bias(path, dataset.format, run.parameters, dataset.row_count, report, score)
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
