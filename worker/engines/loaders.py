"""Load model artifacts and read datasets for real, without ever unpickling.

Only workers import this module (onnxruntime, skops, xgboost, lightgbm and
pyarrow's readers are heavy). Each loader takes a local file path, loads the
artifact the way a serving system would, and returns a small summary; a file
that does not load raises ``LoadError`` with a reason meant for people.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ProgressFn = Callable[[float], None]


class LoadError(Exception):
    """The artifact or dataset does not load; the message says why."""


# Types skops does not trust by default that a scikit-learn model legitimately holds.
# Anything else (a custom function or class, a type from another library) is refused by name.
TRUSTED_SKOPS_TYPES: frozenset[str] = frozenset(
    {
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn._loss.link.IdentityLink",
        "sklearn._loss.link.LogLink",
        "sklearn._loss.link.LogitLink",
        "sklearn._loss.link.MultinomialLogit",
        "sklearn._loss.loss.HalfSquaredError",
        "sklearn._loss.loss.AbsoluteError",
        "sklearn._loss.loss.PinballLoss",
        "sklearn._loss.loss.HuberLoss",
        "sklearn._loss.loss.HalfPoissonLoss",
        "sklearn._loss.loss.HalfGammaLoss",
        "sklearn._loss.loss.HalfTweedieLoss",
        "sklearn._loss.loss.HalfBinomialLoss",
        "sklearn._loss.loss.HalfMultinomialLoss",
        "sklearn._loss.loss.ExponentialLoss",
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neighbors._ball_tree.BallTree",
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
        "sklearn.metrics._dist_metrics.ManhattanDistance64",
        "sklearn.metrics._dist_metrics.MinkowskiDistance64",
        "sklearn.metrics._dist_metrics.ChebyshevDistance64",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
    }
)


def load_onnx(path: str | Path) -> dict:
    """onnx.load + onnx.checker, then an onnxruntime session; self-contained models only (no external data)."""
    import onnx
    import onnxruntime

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise LoadError(f"not a readable ONNX model: {exc}") from exc
    external = [
        t.name
        for t in list(model.graph.initializer) + [a.t for n in model.graph.node for a in n.attribute if a.t.name]
        if t.data_location == onnx.TensorProto.EXTERNAL
    ]
    if external:
        raise LoadError(f"ONNX models must be self-contained; tensor(s) stored outside the file: {external[:5]}")
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise LoadError(f"ONNX checker rejected the model: {exc}") from exc
    try:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        session = onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise LoadError(f"onnxruntime cannot load the model: {exc}") from exc
    return {
        "ir_version": model.ir_version,
        "opsets": {o.domain or "ai.onnx": o.version for o in model.opset_import},
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "inputs": [{"name": i.name, "type": i.type, "shape": [str(d) for d in i.shape]} for i in session.get_inputs()],
        "outputs": [{"name": o.name, "type": o.type} for o in session.get_outputs()],
    }


def load_skops(path: str | Path, trusted: frozenset[str] = TRUSTED_SKOPS_TYPES) -> dict:
    """skops.io.load with an explicit allow-list; any other untrusted type is refused by name."""
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=str(path))
    except Exception as exc:
        raise LoadError(f"not a readable skops file: {exc}") from exc
    refused = sorted(t for t in untrusted if t not in trusted)
    if refused:
        raise LoadError(f"the skops file holds types that are not trusted: {', '.join(refused)}")
    try:
        estimator = sio.load(str(path), trusted=list(untrusted))
    except Exception as exc:
        raise LoadError(f"skops cannot load the model: {exc}") from exc
    summary = {"estimator": f"{type(estimator).__module__}.{type(estimator).__qualname__}"}
    n_features = getattr(estimator, "n_features_in_", None)
    if n_features is not None:
        summary["n_features"] = int(n_features)
    return summary


def load_xgboost(path: str | Path) -> dict:
    """xgboost.Booster.load_model from the bytes (JSON or UBJ, told apart by XGBoost itself)."""
    import xgboost

    try:
        booster = xgboost.Booster()
        booster.load_model(bytearray(Path(path).read_bytes()))
        return {"num_features": booster.num_features(), "num_boosted_rounds": booster.num_boosted_rounds()}
    except Exception as exc:
        raise LoadError(f"XGBoost cannot load the model: {exc}") from exc


def load_lightgbm(path: str | Path) -> dict:
    """lightgbm.Booster(model_file=...) on the text model."""
    import lightgbm

    try:
        booster = lightgbm.Booster(model_file=str(path))
        return {"num_trees": booster.num_trees(), "num_features": booster.num_feature()}
    except Exception as exc:
        raise LoadError(f"LightGBM cannot load the model: {exc}") from exc


LOADERS: dict[str, Callable[[str | Path], dict]] = {
    "onnx": load_onnx,
    "skops": load_skops,
    "xgboost": load_xgboost,
    "lightgbm": load_lightgbm,
}


def load_artifact(path: str | Path, fmt: str) -> dict:
    """Load an artifact of a declared format; ``LoadError`` when it does not load."""
    loader = LOADERS.get(fmt)
    if loader is None:
        raise LoadError(f"no loader for format {fmt!r}")
    return loader(path)


# ---------------------------------------------------------------------------------------------
# Datasets


@dataclass
class DatasetStats:
    """What reading a whole dataset found."""

    row_count: int = 0
    columns: list[str] = field(default_factory=list)
    types: dict[str, str] = field(default_factory=dict)


def _batches(path: str, fmt: str):
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.json as pajson
    import pyarrow.parquet as pq

    try:
        if fmt == "csv":
            reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=4 << 20))
            return reader.schema, reader
        if fmt == "jsonl":
            reader = pajson.open_json(path, read_options=pajson.ReadOptions(block_size=4 << 20))
            return reader.schema, reader
        if fmt == "parquet":
            parquet = pq.ParquetFile(path)
            return parquet.schema_arrow, parquet.iter_batches(batch_size=65536)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise LoadError(f"cannot read the {fmt} file: {exc}") from exc
    raise LoadError(f"unknown dataset format {fmt!r}")


def read_dataset(path: str | Path, fmt: str, progress: ProgressFn | None = None) -> DatasetStats:
    """Read a CSV, JSON Lines or Parquet file in batches with pyarrow: count rows, list columns."""
    import pyarrow as pa

    path = str(path)
    total = max(1, os.path.getsize(path))
    schema, batches = _batches(path, fmt)
    stats = DatasetStats(columns=list(schema.names), types={f.name: str(f.type) for f in schema})
    seen_bytes = 0
    try:
        for batch in batches:
            stats.row_count += batch.num_rows
            seen_bytes += batch.nbytes
            if progress is not None:
                progress(min(1.0, seen_bytes / total))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise LoadError(f"cannot read the {fmt} file after {stats.row_count} rows: {exc}") from exc
    return stats


def iter_columns(path: str | Path, fmt: str, columns: list[str]):
    """Yield record batches holding only ``columns`` (in that order), read in chunks with pyarrow.

    CSV reads only those columns, Parquet only their column chunks, JSON Lines projects each
    batch. A column absent from the file, or a batch that does not parse, is a ``LoadError``.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.json as pajson
    import pyarrow.parquet as pq

    path, columns = str(path), list(dict.fromkeys(columns))
    try:
        if fmt == "csv":
            header = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 16)).schema.names
            _require_columns(header, columns)
            batches = pacsv.open_csv(
                path,
                read_options=pacsv.ReadOptions(block_size=4 << 20),
                convert_options=pacsv.ConvertOptions(include_columns=columns),
            )
        elif fmt == "parquet":
            parquet = pq.ParquetFile(path)
            _require_columns(parquet.schema_arrow.names, columns)
            batches = parquet.iter_batches(batch_size=65536, columns=columns)
        elif fmt == "jsonl":
            reader = pajson.open_json(path, read_options=pajson.ReadOptions(block_size=4 << 20))
            _require_columns(reader.schema.names, columns)
            batches = (batch.select(columns) for batch in reader)
        else:
            raise LoadError(f"unknown dataset format {fmt!r}")
        for batch in batches:
            yield batch.select(columns)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise LoadError(f"cannot read the {fmt} file: {exc}") from exc


def _require_columns(present: list[str], wanted: list[str]) -> None:
    missing = [c for c in wanted if c not in present]
    if missing:
        raise LoadError(f"column(s) missing from the file: {', '.join(missing)}")
