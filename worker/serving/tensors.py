"""The V2 (Open Inference Protocol) request and response bodies, turned into numpy arrays and back.

A request is ``{"id"?, "inputs": [{"name", "shape", "datatype", "data"}], "outputs"?: [{"name"}]}``. ``data``
may be flat (row-major, as the protocol writes it) or nested; it must hold as many numbers as ``shape`` says.
Tabular models take one feature matrix: one input of shape ``[rows, features]`` (``[features]`` is one row), or
several inputs of shape ``[rows]`` / ``[rows, k]`` joined as columns in the order given. Anything else is a
``BadRequest`` whose message tells the caller what to change.
"""

from __future__ import annotations

import math

import numpy as np
import orjson

ACCEPTED = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64}
_NUMERIC_KINDS = {"FP32": "biuf", "FP64": "biuf", "INT64": "biu"}
DATATYPE_OF_KIND = {"b": "BOOL", "i": "INT64", "u": "UINT64"}


class BadRequest(Exception):
    """The caller's request cannot be served as it is (HTTP 400 unless ``status`` says otherwise)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class ModelFailed(Exception):
    """The model raised on input that passed every check (HTTP 500)."""


def parse_request(body: bytes, *, max_rows: int) -> tuple[np.ndarray, str | None, list[str] | None]:
    """(feature matrix, request id, names of the outputs asked for or None for all) of a V2 infer body."""
    try:
        doc = orjson.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadRequest('the body must be a JSON object with an "inputs" list')
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise BadRequest('"inputs" must be a non-empty list of tensors {"name", "shape", "datatype", "data"}')
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise BadRequest('"id" must be a string')
    tensors = [_tensor(item, i) for i, item in enumerate(inputs)]
    if len(tensors) == 1:  # one input: [rows, features], or [features] for one row
        columns = [tensors[0].reshape(1, -1) if tensors[0].ndim == 1 else tensors[0]]
    else:  # several inputs: each is one column ([rows]) or a block of columns ([rows, k])
        columns = [t.reshape(-1, 1) if t.ndim == 1 else t for t in tensors]
    rows = {c.shape[0] for c in columns}
    if len(rows) > 1:
        raise BadRequest(f"the inputs have different row counts: {sorted(rows)}")
    features = columns[0] if len(columns) == 1 else np.hstack([c.astype(np.float64, copy=False) for c in columns])
    if features.shape[0] == 0:
        raise BadRequest("the request has no rows")
    if features.shape[0] > max_rows:
        raise BadRequest(f"at most {max_rows} rows per request; this one has {features.shape[0]}", status=413)
    return features, request_id, _requested(doc.get("outputs"))


def _tensor(item: object, index: int) -> np.ndarray:
    if not isinstance(item, dict):
        raise BadRequest(f"inputs[{index}] must be an object")
    name = item.get("name", f"inputs[{index}]")
    what = f"input {name!r}"
    datatype, shape, data = item.get("datatype"), item.get("shape"), item.get("data")
    if not isinstance(datatype, str) or datatype not in ACCEPTED:
        raise BadRequest(f"{what}: datatype {datatype!r} is not served; use one of {', '.join(ACCEPTED)}")
    if not isinstance(shape, list) or not shape or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise BadRequest(f"{what}: shape must be a list of non-negative integers, e.g. [rows, features]")
    if len(shape) > 2:
        raise BadRequest(f"{what}: shape {shape} has {len(shape)} dimensions; tabular models take [rows, features]")
    if not isinstance(data, list):
        raise BadRequest(f"{what}: data must be a list of numbers (flat or nested)")
    try:
        array = np.asarray(data)
    except (ValueError, TypeError):
        raise BadRequest(f"{what}: data is not a rectangular list of numbers") from None
    if array.size and array.dtype.kind not in _NUMERIC_KINDS[datatype]:
        expected = "integers" if datatype == "INT64" else "numbers"
        raise BadRequest(f"{what}: data must hold only {expected} for datatype {datatype}")
    needed = math.prod(shape)
    if array.size != needed:
        raise BadRequest(f"{what}: shape {shape} needs {needed} value(s); data has {array.size}")
    return array.astype(ACCEPTED[datatype], copy=False).reshape(shape)


def _requested(outputs: object) -> list[str] | None:
    if outputs is None:
        return None
    if not isinstance(outputs, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs
    ):
        raise BadRequest('"outputs" must be a list of {"name": ...}')
    return [o["name"] for o in outputs]


def datatype(array: np.ndarray) -> str:
    """The V2 datatype naming a numpy array's element type."""
    if array.dtype == np.float32:
        return "FP32"
    if array.dtype.kind == "f":
        return "FP64"
    if array.dtype.kind in ("U", "S", "O"):
        return "BYTES"
    return DATATYPE_OF_KIND.get(array.dtype.kind, "FP64")


def output_tensor(name: str, array: np.ndarray) -> dict:
    """One V2 output tensor: the shape, the datatype, the values flat in row-major order."""
    kind = datatype(array)
    data = [str(v) for v in array.ravel().tolist()] if kind == "BYTES" else array.ravel().tolist()
    return {"name": name, "shape": list(array.shape), "datatype": kind, "data": data}
