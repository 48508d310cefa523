"""The model a serving process answers with: the approved artifact, checked against its digest, loaded safely.

``load_served`` hashes the file first and refuses (``DigestRefused``) bytes whose sha256 is not the approved
digest; then it loads the artifact with the project's safe loaders (``worker.engines.loaders``: ONNX through
the checker and a one-thread onnxruntime session, skops with its allow-list, XGBoost JSON/UBJ, LightGBM text;
nothing is ever unpickled) and wraps it in one ``predict(features) -> [(name, array)]``:

- ``predictions``: one value per row (class labels for classifiers, values for regressors);
- ``probabilities``: one row of class probabilities per row, when the model gives them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from worker.engines import loaders
from worker.serving.tensors import BadRequest, ModelFailed, datatype

Outputs = list[tuple[str, np.ndarray]]

PLATFORMS = {"onnx": "onnxruntime_onnx", "skops": "sklearn_skops", "xgboost": "xgboost_json", "lightgbm": "lightgbm"}
_ONNX_INPUT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64}


class DigestRefused(Exception):
    """The artifact's bytes are not the approved ones: the process must not serve them."""


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class ServedModel:
    """A loaded artifact and what its metadata says about it."""

    fmt: str
    digest: str
    width: int | None  # features the model expects, when it says
    input_datatype: str  # FP32 | FP64 | INT64
    outputs: list[dict] = field(default_factory=list)  # V2 metadata of the outputs
    predict_fn: Callable[[np.ndarray], Outputs] | None = None

    @property
    def platform(self) -> str:
        return PLATFORMS.get(self.fmt, self.fmt)

    def predict(self, features: np.ndarray) -> Outputs:
        """The model's outputs for a feature matrix; ``BadRequest`` for the wrong width, ``ModelFailed`` otherwise."""
        width = features.shape[1]
        if self.width is not None and width != self.width:
            raise BadRequest(f"the model expects {self.width} feature(s) per row; the request has {width}")
        try:
            return self.predict_fn(features)
        except BadRequest:
            raise
        except Exception as exc:
            text = str(exc).strip().splitlines()
            raise ModelFailed(f"the model failed on this input: {text[0] if text else type(exc).__name__}") from exc


def load_served(path: str | Path, fmt: str, expected_digest: str) -> ServedModel:
    """Check the file's sha256 against ``expected_digest``, then load it (``loaders.LoadError`` if it does not)."""
    actual = sha256_file(path)
    if actual != expected_digest:
        raise DigestRefused(
            f"the artifact's sha256 is {actual}, not the approved digest {expected_digest}; refusing to serve it"
        )
    builders = {"onnx": _onnx, "skops": _skops, "xgboost": _xgboost, "lightgbm": _lightgbm}
    build = builders.get(fmt)
    if build is None:
        raise loaders.LoadError(f"no way to serve a model of format {fmt!r} (onnx, skops, xgboost, lightgbm)")
    model = build(path)
    model.fmt, model.digest = fmt, actual
    return model


def _flat(array: np.ndarray) -> np.ndarray:
    return array[:, 0] if array.ndim == 2 and array.shape[1] == 1 else array


def _meta(name: str, datatype: str, shape: list[int]) -> dict:
    return {"name": name, "datatype": datatype, "shape": shape}


def _onnx(path) -> ServedModel:
    session = loaders.onnx_session(path)
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise loaders.LoadError(f"the ONNX model has {len(inputs)} inputs; serving takes models with one feature input")
    first = inputs[0]
    dtype = _ONNX_INPUT_TYPES.get(first.type)
    if dtype is None:
        raise loaders.LoadError(f"the ONNX model's input is {first.type}; serving takes float, double or int64")
    width = first.shape[1] if len(first.shape) == 2 and isinstance(first.shape[1], int) else None
    tensors = [o for o in session.get_outputs() if o.type.startswith("tensor(")]
    if not tensors:
        raise loaders.LoadError("the ONNX model has no tensor output (a ZipMap output needs zipmap=False)")
    label = next((o for o in tensors if o.name == "label"), None) or next(
        (o for o in tensors if any(t in o.type for t in ("int", "string", "bool"))), None
    )
    chosen = label or tensors[0]
    probabilities = None
    if label is not None:
        probabilities = next((o for o in tensors if o is not label and ("float" in o.type or "double" in o.type)), None)
    names = [chosen.name] + ([probabilities.name] if probabilities is not None else [])
    feed = first.name

    def predict(features: np.ndarray) -> Outputs:
        result = session.run(names, {feed: features.astype(dtype, copy=False)})
        out = [("predictions", _flat(np.asarray(result[0])))]
        if probabilities is not None:
            out.append(("probabilities", np.asarray(result[1])))
        return out

    label_type = ("BYTES" if "string" in label.type else "INT64") if label is not None else "FP32"
    outputs = [_meta("predictions", label_type, [-1])]
    if probabilities is not None:
        outputs.append(_meta("probabilities", "FP32", [-1, -1]))
    input_type = {np.float32: "FP32", np.float64: "FP64", np.int64: "INT64"}[dtype]
    return ServedModel(
        fmt="onnx", digest="", width=width, input_datatype=input_type, outputs=outputs, predict_fn=predict
    )


def _skops(path) -> ServedModel:
    estimator = loaders.native_model(path, "skops")
    if not hasattr(estimator, "predict"):
        raise loaders.LoadError(f"the skops model ({type(estimator).__qualname__}) has no predict method")
    width = getattr(estimator, "n_features_in_", None)
    has_proba = hasattr(estimator, "predict_proba")

    def predict(features: np.ndarray) -> Outputs:
        out = [("predictions", _flat(np.asarray(estimator.predict(features))))]
        if has_proba:
            out.append(("probabilities", np.asarray(estimator.predict_proba(features))))
        return out

    classes = getattr(estimator, "classes_", None)
    kind = datatype(np.asarray(classes)) if classes is not None else "FP64"
    outputs = [_meta("predictions", kind, [-1])] + ([_meta("probabilities", "FP64", [-1, -1])] if has_proba else [])
    return ServedModel(
        fmt="skops",
        digest="",
        width=int(width) if width is not None else None,
        input_datatype="FP64",
        outputs=outputs,
        predict_fn=predict,
    )


def _from_scores(scores: np.ndarray, kind: str) -> Outputs:
    """Predictions (and probabilities) from a booster's raw prediction, by the kind of its objective."""
    if kind == "binary":
        p = np.asarray(scores, dtype=np.float64).reshape(-1)
        return [("predictions", (p >= 0.5).astype(np.int64)), ("probabilities", np.column_stack([1 - p, p]))]
    if kind == "multiclass":
        probs = np.asarray(scores, dtype=np.float64)
        return [("predictions", probs.argmax(axis=1).astype(np.int64)), ("probabilities", probs)]
    if kind == "labels":
        return [("predictions", np.asarray(scores).reshape(-1).astype(np.int64))]
    return [("predictions", _flat(np.asarray(scores, dtype=np.float64)))]


def _booster_outputs(kind: str) -> list[dict]:
    if kind in ("binary", "multiclass"):
        return [_meta("predictions", "INT64", [-1]), _meta("probabilities", "FP64", [-1, -1])]
    return [_meta("predictions", "INT64" if kind == "labels" else "FP64", [-1])]


def _xgboost(path) -> ServedModel:
    import xgboost

    booster = loaders.native_model(path, "xgboost")
    objective = json.loads(booster.save_config())["learner"]["objective"]["name"]
    kind = {"binary:logistic": "binary", "multi:softprob": "multiclass", "multi:softmax": "labels"}.get(objective, "")

    def predict(features: np.ndarray) -> Outputs:
        return _from_scores(booster.predict(xgboost.DMatrix(features)), kind)

    return ServedModel(
        fmt="xgboost",
        digest="",
        width=booster.num_features() or None,
        input_datatype="FP32",
        outputs=_booster_outputs(kind),
        predict_fn=predict,
    )


def _lightgbm(path) -> ServedModel:
    booster = loaders.native_model(path, "lightgbm")
    objective = ""
    with open(path, encoding="utf-8", errors="replace") as text:  # the model's header names its objective
        for line in text:
            if line.startswith("objective="):
                objective = line.split("=", 1)[1].split(" ")[0].strip()
                break
            if line.startswith("Tree="):
                break
    kind = {"binary": "binary", "multiclass": "multiclass", "multiclassova": "multiclass"}.get(objective, "")

    def predict(features: np.ndarray) -> Outputs:
        return _from_scores(booster.predict(features), kind)

    return ServedModel(
        fmt="lightgbm",
        digest="",
        width=booster.num_feature() or None,
        input_datatype="FP64",
        outputs=_booster_outputs(kind),
        predict_fn=predict,
    )
