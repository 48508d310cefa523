"""A small, real ONNX model whose bytes can be made unique per request.

The load generator needs a distinct artifact for every request (a second
version with the same digest is refused with 409). Protobuf lets a field be
repeated at the end of a message, the last occurrence winning, so the base
``ModelProto`` is followed by one more ``doc_string`` field (number 6, wire
type 2: tag byte ``0x32``, a one-byte varint length, then the bytes). Only
that trailer changes from request to request and the file stays a valid model
that onnx and onnxruntime load.
"""

from __future__ import annotations

import numpy as np

DOC_STRING_TAG = 0x32  # field 6 (doc_string), wire type 2 (length-delimited)


def base_model_bytes(weights: int) -> bytes:
    """Serialise a linear model ``y = x @ W + b`` with ``weights`` float32 weights (one output)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(7)
    w = numpy_helper.from_array(rng.standard_normal((weights, 1)).astype(np.float32), name="W")
    b = numpy_helper.from_array(np.zeros(1, dtype=np.float32), name="B")
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["X", "W", "B"], ["Y"])],
        "assay_bench_linear",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, weights])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 1])],
        initializer=[w, b],
    )
    model = helper.make_model(graph, producer_name="assay-bench", opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def build(total_size: int = 6144, trailer_min: int = 48) -> tuple[bytes, int]:
    """Return (base bytes, trailer length) such that base + 2 + trailer == ``total_size``.

    The trailer (the unique doc string) is between ``trailer_min`` and 127 bytes,
    so its varint length fits in one byte.
    """
    weights = (total_size - trailer_min - 400) // 4
    while True:
        base = base_model_bytes(weights)
        trailer = total_size - 2 - len(base)
        if trailer_min <= trailer <= 127:
            return base, trailer
        weights += (trailer - (trailer_min + 127) // 2) // 4 or (1 if trailer > 127 else -1)


def with_trailer(base: bytes, text: bytes) -> bytes:
    """The base model followed by a replacement doc string (``len(text)`` must be < 128)."""
    assert len(text) < 128
    return base + bytes([DOC_STRING_TAG, len(text)]) + text


def self_check(base: bytes, trailer: int) -> None:
    """Make sure a model with a trailer still loads and scores (onnxruntime, if installed)."""
    import onnx

    data = with_trailer(base, b"x" * trailer)
    model = onnx.load_from_string(data)
    onnx.checker.check_model(model)
    assert model.doc_string == "x" * trailer
    try:
        import onnxruntime as ort
    except ImportError:  # the bench still works; the registry's own checks decide
        return
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    width = session.get_inputs()[0].shape[1]
    session.run(None, {"X": np.ones((2, width), dtype=np.float32)})
