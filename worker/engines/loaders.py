"""Load model artifacts and read datasets for real, without ever unpickling.

Only workers import this module (onnxruntime, skops, xgboost, lightgbm and
pyarrow's readers are heavy). Each loader takes a local file path, loads the
artifact the way a serving system would, and returns a small summary; a file
that does not load raises ``LoadError`` with a reason meant for people.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

ProgressFn = Callable[[float], None]


class LoadError(Exception):
    """The artifact or dataset does not load; the message says why."""


class MissingColumns(LoadError):
    """Columns asked for are not in the dataset file (the message names them, and nothing else)."""


# pyarrow quotes the offending row or value in some of its messages; a dataset's cells may be
# personal data, and the reason is stored, shown and audited, so the quoted part is dropped.
_ROW_QUOTED = re.compile(r"^(CSV parse error: Expected \d+ columns?, got \d+)\b.*$", re.S)
_VALUE_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def arrow_reason(exc: BaseException) -> str:
    """pyarrow's message for a dataset that does not read, without the row or value it quotes.

    ``CSV parse error: Expected 3 columns, got 4: jane@example.com,...`` keeps the counts;
    ``invalid value 'jane@example.com'`` becomes ``invalid value '…'``.
    """
    text = str(exc).strip()
    text = _ROW_QUOTED.sub(r"\1", text)
    text = _VALUE_QUOTED.sub("'…'", text)
    return text.splitlines()[0] if text else type(exc).__name__


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

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise LoadError(f"not a readable ONNX model: {exc}") from exc
    external = external_tensors(model)
    if external:
        raise LoadError(f"ONNX models must be self-contained; tensor(s) stored outside the file: {external[:5]}")
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise LoadError(f"ONNX checker rejected the model: {exc}") from exc
    session = _onnx_session(path)
    return {
        "ir_version": model.ir_version,
        "opsets": {o.domain or "ai.onnx": o.version for o in model.opset_import},
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "inputs": [{"name": i.name, "type": i.type, "shape": [str(d) for d in i.shape]} for i in session.get_inputs()],
        "outputs": [{"name": o.name, "type": o.type} for o in session.get_outputs()],
    }


def external_tensors(model) -> list[str]:
    """Where an ONNX model keeps tensors outside its file: every graph, nested subgraph and function.

    Walks the main graph, the bodies of If / Loop / Scan (graph attributes, at any depth), local
    functions and training graphs; looks at initializers, sparse initializers and tensor
    attributes. Returns "tensor name (where)" for each tensor whose ``data_location`` is EXTERNAL.
    Iterative, so a deeply nested model cannot exhaust the interpreter's stack.
    """
    import onnx

    found: list[str] = []
    graphs: list[tuple[object, str]] = [(model.graph, "main graph")]
    nodes: list[tuple[object, str]] = []
    for function in model.functions:
        nodes.extend((node, f"function {function.domain}:{function.name}") for node in function.node)
    for i, info in enumerate(model.training_info):
        graphs.append((info.initialization, f"training_info[{i}].initialization"))
        graphs.append((info.algorithm, f"training_info[{i}].algorithm"))

    def tensor(t, where: str) -> None:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            found.append(f"{t.name or '(unnamed)'} ({where})")

    def sparse(st, where: str) -> None:
        tensor(st.values, where)
        tensor(st.indices, where)

    while graphs or nodes:
        while graphs:
            graph, where = graphs.pop()
            for t in graph.initializer:
                tensor(t, where)
            for st in graph.sparse_initializer:
                sparse(st, where)
            nodes.extend((node, where) for node in graph.node)
        if nodes:
            node, where = nodes.pop()
            for attribute in node.attribute:
                here = f"{where} > {node.op_type} {node.name or '(unnamed)'}.{attribute.name}"
                if attribute.HasField("t"):
                    tensor(attribute.t, here)
                for t in attribute.tensors:
                    tensor(t, here)
                if attribute.HasField("sparse_tensor"):
                    sparse(attribute.sparse_tensor, here)
                for st in attribute.sparse_tensors:
                    sparse(st, here)
                if attribute.HasField("g"):
                    graphs.append((attribute.g, here))
                graphs.extend((g, f"{here}[{i}]") for i, g in enumerate(attribute.graphs))
    return found


def _onnx_session(path: str | Path):
    import onnxruntime

    try:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        return onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise LoadError(f"onnxruntime cannot load the model: {exc}") from exc


def _bounded_zip(path: str | Path, what: str) -> None:
    """Refuse a zip archive (a skops file) that would expand past the configured bounds, before inflating it."""
    import zipfile

    from apps.registry.archives import ArchiveRefused, check_zip

    try:
        check_zip(path, what=what)
    except ArchiveRefused as exc:
        raise LoadError(str(exc)) from exc
    except (zipfile.BadZipFile, OSError) as exc:
        raise LoadError(f"not a readable {what}: {exc}") from exc


def _bounded_parquet(parquet, path: str) -> None:
    """Refuse a Parquet file whose footer declares more uncompressed bytes than allowed, before reading pages."""
    from apps.registry.archives import ArchiveRefused, check_parquet_metadata

    try:
        check_parquet_metadata(parquet.metadata, stored=os.path.getsize(path), what="the Parquet dataset")
    except ArchiveRefused as exc:
        raise LoadError(str(exc)) from exc


def _skops_estimator(path: str | Path, trusted: frozenset[str] = TRUSTED_SKOPS_TYPES):
    _bounded_zip(path, "skops file")
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=str(path))
    except Exception as exc:
        raise LoadError(f"not a readable skops file: {exc}") from exc
    refused = sorted(t for t in untrusted if t not in trusted)
    if refused:
        raise LoadError(f"the skops file holds types that are not trusted: {', '.join(refused)}")
    try:
        return sio.load(str(path), trusted=list(untrusted))
    except Exception as exc:
        raise LoadError(f"skops cannot load the model: {exc}") from exc


def load_skops(path: str | Path, trusted: frozenset[str] = TRUSTED_SKOPS_TYPES) -> dict:
    """skops.io.load with an explicit allow-list; any other untrusted type is refused by name."""
    estimator = _skops_estimator(path, trusted)
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


# ---------------------------------------------------------------------------------------------
# Native models, for engines that need the library's own object (explanations)


def onnx_session(path: str | Path):
    """The checks of ``load_onnx`` (self-contained, accepted by the checker), then a one-thread session."""
    load_onnx(path)
    return _onnx_session(path)


def xgboost_booster(path: str | Path):
    """An ``xgboost.Booster`` loaded from the bytes (JSON or UBJ, told apart by XGBoost itself)."""
    import xgboost

    try:
        booster = xgboost.Booster()
        booster.load_model(bytearray(Path(path).read_bytes()))
        booster.num_features()  # a model that loaded half-way fails here, not later
        return booster
    except Exception as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LoadError(f"XGBoost cannot load the model: {first_line}") from exc  # not XGBoost's C++ stack


def lightgbm_booster(path: str | Path):
    """A ``lightgbm.Booster`` read from the text model."""
    import lightgbm

    try:
        booster = lightgbm.Booster(model_file=str(path))
        booster.num_feature()
        return booster
    except Exception as exc:
        raise LoadError(f"LightGBM cannot load the model: {exc}") from exc


NATIVE_LOADERS: dict[str, Callable] = {
    "onnx": onnx_session,
    "skops": _skops_estimator,
    "xgboost": xgboost_booster,
    "lightgbm": lightgbm_booster,
}


def native_model(path: str | Path, fmt: str):
    """The library's own object for an artifact: an onnxruntime session, the skops estimator, a Booster.

    The same safety as verification: ONNX passes the checker and holds no external data, skops
    loads only the trusted types (others are refused by name), nothing is unpickled.
    """
    loader = NATIVE_LOADERS.get(fmt)
    if loader is None:
        raise LoadError(f"no loader for format {fmt!r}")
    return loader(path)


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
# Scoring

Scorer = Callable[["np.ndarray"], "np.ndarray"]


def _to_labels(output) -> np.ndarray:
    """A model's output as one prediction per row: labels as they are, probabilities cut at 0.5 (argmax if many)."""
    import numpy as np

    out = np.asarray(output)
    if out.ndim == 2 and out.shape[1] == 1:
        out = out[:, 0]
    if out.ndim == 2:
        return out.argmax(axis=1).astype(np.int64)
    if out.ndim != 1:
        raise LoadError(f"the model's output has shape {out.shape}, not one prediction per row")
    if out.dtype.kind == "f":
        return (out >= 0.5).astype(np.int64)
    return out


def _checked(expected: int | None, predict: Callable) -> Scorer:
    """Refuse a feature matrix of the wrong width in words; any other failure to predict is a ``LoadError``."""

    def score(features):
        width = features.shape[1] if features.ndim == 2 else 0
        if expected is not None and width != expected:
            raise LoadError(f"the model expects {expected} feature(s), the data has {width}")
        try:
            return _to_labels(predict(features))
        except LoadError:
            raise
        except Exception as exc:
            raise LoadError(f"the model cannot score the features: {exc}") from exc

    return score


def _onnx_scorer(path: str | Path) -> Scorer:
    import numpy as np

    session = onnx_session(path)  # the same checks as verification: self-contained, accepted by the checker
    first = session.get_inputs()[0]
    outputs = session.get_outputs()
    # skl2onnx classifiers (zipmap off) give "label" then "probabilities"; prefer the label output.
    chosen = next((o for o in outputs if o.name == "label"), None)
    if chosen is None:
        chosen = next((o for o in outputs if "int" in o.type or "string" in o.type or "bool" in o.type), outputs[0])
    width = first.shape[1] if len(first.shape) == 2 and isinstance(first.shape[1], int) else None

    def predict(features):
        return session.run([chosen.name], {first.name: np.ascontiguousarray(features, dtype=np.float32)})[0]

    return _checked(width, predict)


def _skops_scorer(path: str | Path) -> Scorer:
    estimator = _skops_estimator(path)
    if not hasattr(estimator, "predict"):
        raise LoadError(f"the skops model ({type(estimator).__qualname__}) has no predict method")
    width = getattr(estimator, "n_features_in_", None)
    return _checked(int(width) if width is not None else None, estimator.predict)


def _xgboost_scorer(path: str | Path) -> Scorer:
    import xgboost

    booster = xgboost_booster(path)
    width = booster.num_features()
    return _checked(width or None, lambda features: booster.predict(xgboost.DMatrix(features)))


def _lightgbm_scorer(path: str | Path) -> Scorer:
    booster = lightgbm_booster(path)
    return _checked(booster.num_feature() or None, booster.predict)


SCORERS: dict[str, Callable[[str | Path], Scorer]] = {
    "onnx": _onnx_scorer,
    "skops": _skops_scorer,
    "xgboost": _xgboost_scorer,
    "lightgbm": _lightgbm_scorer,
}


def scorer(path: str | Path, fmt: str) -> Scorer:
    """Load an artifact once and return ``score(features) -> predictions``, one per row.

    ``features`` is a 2-D float array (columns in the order the model was trained on). ONNX
    gets the first input as float32 and answers with its label output (or its probabilities,
    cut at 0.5); skops calls ``predict``; XGBoost and LightGBM predict probabilities, cut at
    0.5 (argmax for several classes). A model that does not load, or a matrix of the wrong
    width, is a ``LoadError`` with a reason meant for people.
    """
    build = SCORERS.get(fmt)
    if build is None:
        raise LoadError(f"no way to score a model of format {fmt!r}")
    return build(path)


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
            _bounded_parquet(parquet, path)
            return parquet.schema_arrow, parquet.iter_batches(batch_size=65536)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise LoadError(f"cannot read the {fmt} file: {arrow_reason(exc)}") from None
    raise LoadError(f"unknown dataset format {fmt!r}")


def read_dataset(path: str | Path, fmt: str, progress: ProgressFn | None = None) -> DatasetStats:
    """Read a CSV, JSON Lines or Parquet file in batches with pyarrow: count rows, list columns."""
    import pyarrow as pa

    path = str(path)
    total = max(1, os.path.getsize(path))
    schema, batches = _batches(path, fmt)
    try:
        stats = DatasetStats(columns=list(schema.names), types={f.name: str(f.type) for f in schema})
    except UnicodeDecodeError as exc:  # a binary file (compressed, say) read as text
        raise LoadError(f"the {fmt} file's column names are not UTF-8 text: {exc.reason}") from exc
    seen_bytes = 0
    try:
        for batch in batches:
            stats.row_count += batch.num_rows
            seen_bytes += batch.nbytes
            if progress is not None:
                progress(min(1.0, seen_bytes / total))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise LoadError(f"cannot read the {fmt} file after {stats.row_count} rows: {arrow_reason(exc)}") from None
    return stats


def iter_columns(path: str | Path, fmt: str, columns: list[str], *, csv_as_text: bool = False):
    """Yield record batches holding only ``columns`` (in that order), read in chunks with pyarrow.

    CSV reads only those columns, Parquet only their column chunks, JSON Lines projects each
    batch. A column absent from the file, or a batch that does not parse, is a ``LoadError``.
    With ``csv_as_text`` a CSV's columns are read as the text the file holds (a card number
    stays ``4111…`` rather than becoming an integer), which is what a PII scan must see.
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
                convert_options=pacsv.ConvertOptions(
                    include_columns=columns,
                    column_types={c: pa.string() for c in columns} if csv_as_text else None,
                    strings_can_be_null=csv_as_text,
                ),
            )
        elif fmt == "parquet":
            parquet = pq.ParquetFile(path)
            _bounded_parquet(parquet, path)
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
        raise LoadError(f"cannot read the {fmt} file: {arrow_reason(exc)}") from None


def _require_columns(present: list[str], wanted: list[str]) -> None:
    missing = [c for c in wanted if c not in present]
    if missing:
        raise MissingColumns(f"column(s) missing from the file: {', '.join(missing)}")


def write_batches(path: str | Path, fmt: str, batches, schema=None) -> int:
    """Write record batches to a CSV, Parquet or JSON Lines file; returns the rows written.

    The schema is the first batch's (or ``schema`` for an empty input). JSON Lines rows are
    objects in column order, as ``iter_columns`` reads them back.
    """
    import json

    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    rows, writer = 0, None
    path = str(path)
    with open(path, "wb") as out:
        for batch in batches:
            if writer is None:
                schema = batch.schema
                if fmt == "csv":
                    writer = pacsv.CSVWriter(out, schema)
                elif fmt == "parquet":
                    writer = pq.ParquetWriter(out, schema)
                elif fmt == "jsonl":
                    writer = "jsonl"
                else:
                    raise LoadError(f"unknown dataset format {fmt!r}")
            if writer == "jsonl":
                for row in batch.to_pylist():
                    out.write(json.dumps(row, ensure_ascii=False, default=str).encode() + b"\n")
            else:
                writer.write_batch(batch)
            rows += batch.num_rows
        if writer is None and schema is not None and fmt in ("csv", "parquet"):
            writer = pacsv.CSVWriter(out, schema) if fmt == "csv" else pq.ParquetWriter(out, schema)
        if writer is not None and writer != "jsonl":
            writer.close()
    return rows
