"""Real artifacts and datasets for the registry tests: small models trained on random numpy data.

Every function returns bytes; nothing here is mocked. The refused formats
(pickle, joblib, zip-wrapped pickles) are written by the real libraries too.
"""

from __future__ import annotations

import functools
import io
import json
import os
import pickle
import tempfile
import zipfile

import numpy as np


def training_data(rows: int = 200, features: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    return x, y


def _via_file(write, suffix: str) -> bytes:
    fd, path = tempfile.mkstemp(suffix=suffix)
    os.close(fd)
    try:
        write(path)
        with open(path, "rb") as fh:
            return fh.read()
    finally:
        os.unlink(path)


@functools.cache
def logistic_regression(seed: int = 0):
    from sklearn.linear_model import LogisticRegression

    x, y = training_data(seed=seed)
    return LogisticRegression().fit(x, y)


@functools.cache
def onnx_bytes(seed: int = 0) -> bytes:
    """A logistic regression converted with skl2onnx (no ZipMap, as the runtime needs)."""
    from skl2onnx import to_onnx

    x, _ = training_data(seed=seed)
    return to_onnx(logistic_regression(seed), x[:1], options={"zipmap": False}).SerializeToString()


def corrupt_onnx_bytes() -> bytes:
    """Plausible ONNX (ir_version, producer, a graph field of the right length) whose graph is garbage.

    The web process's cheap check accepts it; only loading it for real shows it is broken.
    """
    import onnx

    model = onnx.load_from_string(onnx_bytes())
    graph = model.graph.SerializeToString()
    garbage = bytes((b ^ 0x5A) for b in graph)
    head = onnx.ModelProto(ir_version=model.ir_version, producer_name="skl2onnx").SerializeToString()
    length = len(garbage)
    varint = bytearray()
    while True:
        byte = length & 0x7F
        length >>= 7
        if length:
            varint.append(byte | 0x80)
        else:
            varint.append(byte)
            break
    return head + b"\x3a" + bytes(varint) + garbage  # field 7 (graph), wire type 2


@functools.cache
def skops_bytes(kind: str = "logistic") -> bytes:
    import skops.io as sio
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = training_data()
    if kind == "logistic":
        model = logistic_regression()
    else:  # needs sklearn.tree._tree.Tree, which the worker's allow-list trusts
        model = make_pipeline(StandardScaler(), GradientBoostingClassifier(n_estimators=5, max_depth=2)).fit(x, y)
    return _via_file(lambda path: sio.dump(model, path), ".skops")


def double(values):
    """A custom function: a skops file that refers to it holds a type nobody trusted."""
    return values * 2


def untrusted_skops_bytes() -> bytes:
    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    x, _ = training_data()
    model = FunctionTransformer(func=double).fit(x)
    return _via_file(lambda path: sio.dump(model, path), ".skops")


@functools.cache
def _xgboost_booster():
    import xgboost

    x, y = training_data()
    return xgboost.train({"max_depth": 2, "objective": "binary:logistic", "nthread": 1}, xgboost.DMatrix(x, label=y), 3)


def xgboost_json_bytes() -> bytes:
    return bytes(_xgboost_booster().save_raw("json"))


def xgboost_ubj_bytes() -> bytes:
    return bytes(_xgboost_booster().save_raw("ubj"))


@functools.cache
def lightgbm_bytes() -> bytes:
    import lightgbm

    x, y = training_data()
    booster = lightgbm.train(
        {"objective": "binary", "num_leaves": 4, "verbose": -1, "num_threads": 1}, lightgbm.Dataset(x, label=y), 3
    )
    return booster.model_to_string().encode()


# ---------------------------------------------------------------------------------------------
# Refused formats, written by the real libraries


def pickle_bytes() -> bytes:
    return pickle.dumps(logistic_regression(), protocol=pickle.HIGHEST_PROTOCOL)


def joblib_bytes(compress: int | tuple = 3) -> bytes:
    import joblib

    buffer = io.BytesIO()
    joblib.dump(logistic_regression(), buffer, compress=compress)
    return buffer.getvalue()


def torch_like_zip_bytes() -> bytes:
    """The layout of a PyTorch .pt file: a zip whose archive/data.pkl is a pickle."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"weights": [1.0, 2.0]}))
        archive.writestr("archive/version", "3\n")
    return buffer.getvalue()


def random_bytes(size: int = 4096, seed: int = 1) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size=size, dtype=np.uint8).tobytes()


# ---------------------------------------------------------------------------------------------
# Datasets

COLUMNS = ["age", "income", "gender", "label", "prediction"]


def _rows(n: int = 50):
    rng = np.random.default_rng(3)
    for i in range(n):
        yield {
            "age": int(rng.integers(18, 90)),
            "income": round(float(rng.normal(50000, 10000)), 2),
            "gender": ["f", "m", "x"][i % 3],
            "label": int(i % 2),
            "prediction": int((i + 1) % 2),
        }


def csv_bytes(n: int = 50, columns: list[str] = COLUMNS) -> bytes:
    lines = [",".join(columns)]
    for row in _rows(n):
        lines.append(",".join(str(row[c]) for c in columns))
    return ("\n".join(lines) + "\n").encode()


def jsonl_bytes(n: int = 50, columns: list[str] = COLUMNS) -> bytes:
    return "".join(json.dumps({c: row[c] for c in columns}) + "\n" for row in _rows(n)).encode()


def parquet_bytes(n: int = 50, columns: list[str] = COLUMNS) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = list(_rows(n))
    table = pa.table({c: [r[c] for r in rows] for c in columns})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def schema(columns: list[str] = COLUMNS) -> list[dict]:
    roles = {"gender": "sensitive", "label": "label", "prediction": "prediction"}
    return [{"name": c, "type": "", "role": roles.get(c, "feature")} for c in columns]


def unloadable_onnx_bytes() -> bytes:
    """A well-formed ModelProto whose graph calls an operator that does not exist: the checker refuses it."""
    from onnx import TensorProto, helper

    node = helper.make_node("NoSuchOperator", ["X"], ["Y"])
    graph = helper.make_graph(
        [node],
        "broken",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()
