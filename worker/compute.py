"""Evidence computations over a dataset file: read it in chunks with pyarrow, call an engine, summarise.

Workers only. Each ``compute_*`` takes a local copy of the dataset (already re-hashed against
the digest the run recorded), the run's parameters and a ``report(percent, message)`` callback
(which renews the job's lease, and raises when the run was cancelled or the lease lost), and
returns the kind's versioned summary. A problem with the data is a ``DataProblem`` whose
message is shown to people; memory stays bounded by a chunk (bias, PII) or by the sample
(explainability).
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from worker.engines import bias, loaders

Report = Callable[[int, str], None]


class DataProblem(Exception):
    """The run's inputs cannot give the evidence asked for; the message says why, for people."""


def _throttled(report: Report, low: int, high: int, message: str) -> Callable[[float], None]:
    """Map a 0..1 fraction onto low..high percent, reporting (and renewing the lease) at most twice a second."""
    last = [0.0]

    def progress(fraction: float) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5:
            last[0] = now
            report(low + int((high - low) * min(1.0, fraction)), message)

    return progress


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


def rows_between(batches, start: int, stop: int | None) -> Iterator:
    """The rows ``start`` (inclusive) to ``stop`` (exclusive) of a stream of record batches, as batches.

    Batches before ``start`` are read and dropped (Parquet, CSV and JSON Lines readers stream,
    so memory stays at one batch); reading stops once ``stop`` is reached.
    """
    seen = 0
    for batch in batches:
        n = batch.num_rows
        if stop is not None and seen >= stop:
            return
        lo, hi = max(start - seen, 0), n if stop is None else min(stop - seen, n)
        seen += n
        if hi <= lo:
            continue
        yield batch if (lo, hi) == (0, n) else batch.slice(lo, hi - lo)


def bias_partial_of(
    path: Path,
    fmt: str,
    parameters: dict,
    row_count: int | None,
    report: Report,
    score: loaders.Scorer | None = None,
    rows: tuple[int, int | None] = (0, None),
) -> dict | None:
    """Per-group confusion counts of the rows ``rows`` of a dataset file, read in batches and summed.

    Returns a JSON-safe dict (``partial``: the engine's counts; ``positive_label`` and
    ``reference`` converted to the columns' types) that ``bias_summary_of`` merges exactly with
    other chunks', or None when the rows are empty. With ``score`` (the predictions come from
    the model) each batch's feature columns are scored; otherwise the prediction column is read.
    """
    label, prediction = parameters["label_column"], parameters.get("prediction_column")
    features = list(parameters.get("feature_columns") or []) if score is not None else []
    sensitive = list(parameters["sensitive_columns"])
    progress = _throttled(report, 30, 90, "scoring the model and counting per group" if score else "counting per group")
    merged: bias.BiasPartial | None = None
    positive, reference, done = parameters.get("positive_label"), None, 0
    wanted = [label, *sensitive, *features] if score is not None else [label, prediction, *sensitive]
    start, stop = rows
    expected = (stop if stop is not None else (row_count or 0)) - start
    for batch in rows_between(loaders.iter_columns(path, fmt, wanted), start, stop):
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
        done += batch.num_rows
        progress(done / max(1, expected or done))
    if merged is None:
        return None
    return {"partial": merged.to_dict(), "positive_label": positive, "reference": reference or {}}


def bias_summary_of(partials: list[dict | None]) -> dict:
    """The ``assay.bias/v1`` summary of chunks' partials, merged exactly (the counts are summed)."""
    present = [p for p in partials if p is not None]
    if not present:
        raise DataProblem("the dataset has no rows: the bias report needs at least one row")
    merged = bias.merge_partials([bias.BiasPartial.from_dict(p["partial"]) for p in present])
    return bias.summary(merged, positive_label=present[0]["positive_label"], reference=present[0]["reference"])


def compute_bias(
    path: Path, fmt: str, parameters: dict, row_count: int | None, report: Report, score: loaders.Scorer | None = None
) -> dict:
    """The ``assay.bias/v1`` summary of a whole dataset file in one pass (batches summed as they are read)."""
    partial = bias_partial_of(path, fmt, parameters, row_count, report, score)
    report(92, "summarising")
    return bias_summary_of([partial])


def _pii_columns(parameters: dict, schema: list[dict]) -> list:
    from worker.engines import pii

    roles = {c.get("name"): c.get("role", "") for c in schema}
    return [pii.ColumnSpec(name, roles.get(name, "")) for name in parameters["columns"]]


class PiiScanFailed(DataProblem):
    """Reading or analyzing a dataset for PII failed; the message names columns and rows, never a value.

    The engine's own error (pyarrow's, presidio's, spaCy's) may quote the cells it choked on,
    and a run's error is stored, shown, audited and logged; it is replaced, not chained.
    """


class _Relay:
    """A progress callback that remembers what it raised (a lost lease, a cancelled run): that passes through."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.raised: BaseException | None = None

    def __call__(self, progress: int, message: str = "") -> None:
        try:
            self.report(progress, message)
        except BaseException as exc:
            self.raised = exc
            raise


def _scan_failure(
    exc: BaseException, relay: _Relay, *, doing: str, columns: list[str], after_row: int
) -> BaseException:
    """What a PII computation raises in place of ``exc``: ``exc`` itself when it carries no cell value."""
    from worker.engines import pii

    if exc is relay.raised or isinstance(exc, (pii.ColumnsProblem, loaders.MissingColumns)):
        return exc
    return PiiScanFailed(
        f"{doing} failed at or after row {after_row + 1} of column(s) {', '.join(columns)} "
        f"({type(exc).__name__}); the values are not shown, as they may be personal data"
    )


def pii_scan_of(
    path: Path,
    fmt: str,
    parameters: dict,
    schema: list[dict],
    row_count: int | None,
    report: Report,
    rows: tuple[int, int | None] = (0, None),
    high: int = 90,
):
    """The PII engine's mergeable partial result for the rows ``rows`` of a dataset file (read as text)."""
    from worker.engines import pii

    config = pii_config(parameters)
    try:
        specs = _pii_columns(parameters, schema)
    except pii.ColumnsProblem as exc:
        raise DataProblem(str(exc)) from None
    relay = _Relay(report)
    progress = _throttled(relay, 30, high, "scanning for PII")
    relay(30, "loading the PII analyzer")
    pii.analyzer(config)
    start, stop = rows
    expected = max(1, (stop if stop is not None else (row_count or 1)) - start)
    done = [0]

    def batches() -> Iterator:
        for batch in rows_between(
            loaders.iter_columns(path, fmt, parameters["columns"], csv_as_text=True), start, stop
        ):
            yield batch
            done[0] += batch.num_rows
            progress(done[0] / expected)

    try:
        return pii.scan(batches(), specs, config)
    except Exception as exc:
        failure = _scan_failure(
            exc, relay, doing="the PII scan", columns=[s.name for s in specs], after_row=start + done[0]
        )
        if failure is exc and exc is relay.raised:
            raise
        raise (DataProblem(str(failure)) if failure is exc else failure) from None


def pii_summary_of(partials: list, parameters: dict) -> dict:
    """The ``assay.pii/v1`` summary of chunks' partials (as stored: JSON), merged exactly."""
    from worker.engines import pii

    config = pii_config(parameters)
    merged = pii.merge_partials([pii.PiiPartial.from_json(p) for p in partials])
    return pii.summary(merged, config, pii.analyzer(config).name)


def compute_pii(
    path: Path, fmt: str, parameters: dict, schema: list[dict], row_count: int | None, report: Report
) -> tuple[dict, Any]:
    """The ``assay.pii/v1`` summary of a whole dataset file, and the scan's partial result (the scrub's plan)."""
    from worker.engines import pii

    high = 70 if parameters.get("scrub") else 90
    partial = pii_scan_of(path, fmt, parameters, schema, row_count, report, high=high)
    report(high, "summarising")
    config = pii_config(parameters)
    return pii.summary(partial, config, pii.analyzer(config).name), partial


def pii_config(parameters: dict):
    from worker.engines import pii

    return pii.PiiConfig(
        entities=list(parameters["entities"]),
        score_threshold=float(parameters["score_threshold"]),
        language=parameters["language"],
        allow_list=list(parameters["allow_list"]),
        sample_size=int(parameters["sample_size"]),
    )


def scrub_dataset(
    path: Path,
    fmt: str,
    parameters: dict,
    columns: list[str],
    partial: Any,
    salt: bytes,
    target: Path,
    row_count: int | None,
    report: Report,
) -> int:
    """Write the scrubbed copy of the dataset to ``target`` (same format, columns, order and rows)."""
    from worker.engines import pii

    relay = _Relay(report)
    progress = _throttled(relay, 70, 90, "writing the scrubbed copy")
    done = [0]

    def batches() -> Iterator:
        for batch in loaders.iter_columns(path, fmt, columns, csv_as_text=True):
            done[0] += batch.num_rows
            progress(done[0] / max(1, row_count or done[0]))
            yield batch

    try:
        plan = pii.ScrubPlan.from_partial(partial, pii_config(parameters))
    except ValueError as exc:  # the plan is built from the run's parameters and masked findings only
        raise DataProblem(str(exc)) from None
    try:
        scrubbed = pii.scrub(batches(), plan, parameters.get("operators") or {}, salt)
        return loaders.write_batches(target, fmt, scrubbed)
    except Exception as exc:
        failure = _scan_failure(exc, relay, doing="writing the scrubbed copy", columns=columns, after_row=done[0])
        if failure is exc and exc is relay.raised:
            raise
        raise (DataProblem(str(failure)) if failure is exc else failure) from None


def _sample_rows(
    path: Path, fmt: str, features: list[str], size: int, named: list[int], seed: int
) -> tuple[np.ndarray, list[int]]:
    """A uniform sample of ``size`` rows (reservoir, seeded) plus the named rows, with their row numbers.

    Memory is bounded by the sample, whatever the dataset's size.
    """
    rng = np.random.default_rng(seed)
    reservoir: list[np.ndarray] = []
    numbers: list[int] = []
    wanted = set(named)
    extra: dict[int, np.ndarray] = {}
    seen = 0
    for batch in loaders.iter_columns(path, fmt, features):
        if batch.num_rows == 0:
            continue
        matrix = _features(batch, features)
        for i in sorted(r - seen for r in wanted if seen <= r < seen + batch.num_rows):
            extra[seen + i] = matrix[i]
        for i in range(batch.num_rows):
            n = seen + i
            if len(reservoir) < size:
                reservoir.append(matrix[i])
                numbers.append(n)
            else:
                j = int(rng.integers(0, n + 1))
                if j < size:
                    reservoir[j] = matrix[i]
                    numbers[j] = n
        seen += batch.num_rows
    if not reservoir:
        raise DataProblem("the dataset has no rows: the explainability report needs at least one row")
    missing = sorted(wanted - set(extra))
    if missing:
        raise DataProblem(f"the dataset has {seen} rows; there is no row {missing[0]} to explain")
    order = np.argsort(numbers, kind="stable")
    rows = [reservoir[k] for k in order] + [extra[r] for r in sorted(extra)]
    return np.vstack(rows), [numbers[k] for k in order] + sorted(extra)


def compute_explanation(
    path: Path, fmt: str, parameters: dict, model_path: Path, model_format: str, report: Report
) -> tuple[dict, bytes]:
    """The ``assay.explain/v1`` summary, and the SHAP table of the explained rows (by dataset row number).

    The engine explains rows of a seeded uniform sample of the dataset (``sample_size`` +
    ``background_size`` rows, read in one pass) plus the rows asked for by number; the
    summary's local explanations name their dataset row as ``dataset_row``.
    """
    from worker.engines import explain

    features = list(parameters["feature_columns"])
    report(30, "sampling rows")
    named = list(parameters.get("rows") or [])
    X, numbers = _sample_rows(
        path, fmt, features, parameters["sample_size"] + parameters["background_size"], named, parameters["seed"]
    )
    local = [numbers.index(r) for r in named]
    progress = _throttled(report, 35, 92, "explaining the model")
    try:
        explanation = explain.explain_with_values(
            model_path,
            model_format,
            X,
            features,
            sample_size=min(parameters["sample_size"], len(X)),
            background_size=parameters["background_size"],
            max_evals=parameters.get("max_evals"),
            rows=local,
            local_count=parameters["local_count"],
            seed=parameters["seed"],
            progress=progress,
        )
    except loaders.LoadError as exc:
        raise DataProblem(f"the model does not load for explanation: {exc}")
    except ValueError as exc:
        raise DataProblem(str(exc))
    summary = explanation.summary
    for item in summary.get("local", []):
        item["dataset_row"] = numbers[item["row"]]
    header = ["row", "base_value", "prediction", *features]
    table = [
        [numbers[int(i)], float(explanation.base_values[k]), float(explanation.predictions[k])]
        + [float(v) for v in explanation.values[k]]
        for k, i in enumerate(explanation.rows)
    ]
    return summary, csv_bytes(header, table)


def csv_bytes(header: list[str], rows: list[list[Any]]) -> bytes:
    """A small CSV table for download; cells that a spreadsheet would run as formulas are escaped."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return out.getvalue().encode()


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def bias_table(summary: dict) -> bytes:
    """Per-group metrics of a bias summary, one row per (grouping, group)."""
    metrics = ["selection_rate", "accuracy", "precision", "recall", "false_positive_rate", "false_negative_rate"]
    rows = []
    reports = list((summary.get("by_column") or {}).values())
    if summary.get("intersection"):
        reports.append(summary["intersection"])
    for rep in reports:
        for group in rep.get("groups", []):
            rows.append(
                [" x ".join(rep.get("columns", [])), group.get("name"), group.get("count")]
                + [group.get(m) for m in metrics]
            )
    return csv_bytes(["grouping", "group", "count", *metrics], rows)


def pii_table(summary: dict) -> bytes:
    """The PII findings per column and entity type (masked examples only)."""
    rows = []
    for column in summary.get("columns", []):
        for entity in column.get("entities", []):
            score = entity.get("score") or {}
            rows.append(
                [
                    column.get("name"),
                    entity.get("entity_type"),
                    entity.get("count"),
                    entity.get("rows"),
                    entity.get("share_of_rows"),
                    score.get("max"),
                    " | ".join(entity.get("examples") or []),
                ]
            )
    return csv_bytes(["column", "entity_type", "count", "rows", "share_of_rows", "max_score", "examples"], rows)
