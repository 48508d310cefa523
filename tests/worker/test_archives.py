"""Archives are bounded before they are inflated, and ONNX models keep no tensor outside their file.

Zip bombs (a skops-looking archive with a highly compressible member) and Parquet bombs (a column
of zeros behind a compression codec) are generated here, written in small pieces so the tests
themselves stay small; each is refused with its reason, and a fresh process that opens a
256 MiB bomb (the size the issue reported) stays far below that in memory.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from apps.registry import sniffing
from apps.registry.archives import MIB
from tests.registry import artifacts, fixtures
from worker.engines import loaders

# The registry's fixtures: cora, contributor on the 'credit' team, and her model 'churn'.
contributor = fixtures.contributor
contributor_principal = fixtures.contributor_principal
model = fixtures.model

ROOT = Path(__file__).resolve().parents[2]


def zip_bomb(path: Path, *, expanded_mib: int = 64, members: int = 0) -> Path:
    """A skops-looking zip whose schema.json is ``expanded_mib`` MiB: a JSON object padded with spaces.

    Deflate packs the spaces about 1000:1; skops reads schema.json whole before anything else.
    """
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("schema.json", "w", force_zip64=True) as member:
            member.write(json.dumps({"__class__": "LogisticRegression", "protocol": 1}).encode())
            spaces = b" " * MIB
            for _ in range(expanded_mib):
                member.write(spaces)
        for i in range(members):
            archive.writestr(f"array_{i}.npy", b"\0" * 8)
    return path


def parquet_bomb(path: Path, *, expanded_mib: int = 40) -> Path:
    """A Parquet file of ``expanded_mib`` one-row groups, each a 1 MiB value of zeros, zstd-compressed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("blob", pa.binary()), ("label", pa.int64())])
    block = pa.table({"blob": pa.array([b"\0" * MIB], pa.binary()), "label": [1]}, schema=schema)
    with pq.ParquetWriter(path, schema, compression="zstd", use_dictionary=False) as writer:
        for _ in range(expanded_mib):
            writer.write_table(block)
    return path


# --- zip archives (skops) ---------------------------------------------------------------------


def test_a_zip_bomb_is_refused_before_it_is_inflated(tmp_path):
    # given a 64 MiB member stored in about 64 KiB
    bomb = zip_bomb(tmp_path / "bomb.skops")
    assert bomb.stat().st_size < 256 * 1024
    import skops.io  # noqa: F401 - imported before measuring, as a worker has it loaded

    # when the worker loads it (verification, scoring and explanations share this loader)
    tracemalloc.start()
    try:
        with pytest.raises(loaders.LoadError, match=r"skops file expands to more than 100 times its size \(64 MiB"):
            loaders.load_artifact(bomb, "skops")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # then nothing was inflated
    assert peak < 4 * MIB, peak


def test_the_expanded_size_and_member_limits_are_settings(tmp_path, settings):
    # given limits lowered below what a plain, barely compressible archive holds
    settings.ASSAY_ARCHIVE_MAX_BYTES = 8 * MIB
    settings.ASSAY_ARCHIVE_MAX_MEMBERS = 20
    big = tmp_path / "big.skops"
    with zipfile.ZipFile(big, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("schema.json", "{}")
        archive.writestr("coef.npy", os.urandom(9 * MIB))
    # then each limit is named in the refusal
    with pytest.raises(loaders.LoadError, match=r"skops file expands to more than 8 MiB \(9 MiB from 9 MiB\)"):
        loaders.load_artifact(big, "skops")
    many = zip_bomb(tmp_path / "many.skops", expanded_mib=0, members=25)
    with pytest.raises(loaders.LoadError, match="skops file has more than 20 members"):
        loaders.load_artifact(many, "skops")
    # and a real skops model within the limits still loads
    model = tmp_path / "model.skops"
    model.write_bytes(artifacts.skops_bytes())
    assert loaders.load_artifact(model, "skops")["estimator"].endswith("LogisticRegression")


def test_the_web_check_refuses_a_zip_bomb_with_its_reason(tmp_path):
    data = zip_bomb(tmp_path / "bomb.skops").read_bytes()
    with pytest.raises(sniffing.Refused, match="The zip archive expands to more than 100 times its size"):
        sniffing.detect_model_format(io.BytesIO(data), len(data))
    many = zip_bomb(tmp_path / "many.skops", expanded_mib=0, members=10_001).read_bytes()
    with pytest.raises(sniffing.Refused, match="The zip archive has more than 10000 members"):
        sniffing.detect_model_format(io.BytesIO(many), len(many))


def test_a_member_that_hides_more_than_its_declared_size_is_not_inflated_past_it(tmp_path):
    # given a member whose central directory declares 100 bytes but holds 16 MiB of zeros
    bomb = tmp_path / "liar.skops"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("schema.json", "{}")
        archive.writestr("coef.npy", b"\0" * (16 * MIB))
    data = bytearray(bomb.read_bytes())
    entry = data.rfind(b"PK\x01\x02")  # the last central directory entry: coef.npy's
    assert data[entry + 46 : entry + 46 + len("coef.npy")] == b"coef.npy"
    assert int.from_bytes(data[entry + 24 : entry + 28], "little") == 16 * MIB
    data[entry + 24 : entry + 28] = (100).to_bytes(4, "little")
    bomb.write_bytes(bytes(data))
    import skops.io  # noqa: F401 - imported before measuring, as a worker has it loaded

    # when the worker loads it: the declared size passes the bounds, and inflating stops there
    tracemalloc.start()
    try:
        with pytest.raises(loaders.LoadError):
            loaders.load_artifact(bomb, "skops")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MIB, peak


@pytest.mark.django_db
def test_verification_refuses_a_version_whose_archive_is_past_the_bounds(
    contributor_principal, model, settings, django_capture_on_commit_callbacks
):
    import worker.tasks.registry  # noqa: F401 - registers the registry job handlers
    from apps.registry import services
    from tests.registry.fixtures import job_of, upload
    from worker.runner import run_job

    # given a real skops file registered under the default limits
    version = services.version_create(
        actor=contributor_principal, model_name="churn", artifact=upload(artifacts.skops_bytes())
    )
    # when the operator has since lowered the bound below its expanded size
    settings.ASSAY_ARCHIVE_MAX_BYTES = 1024
    with django_capture_on_commit_callbacks(execute=True):
        run_job(job_of(version).pk)
    version.refresh_from_db()
    # then verification refuses it with the reason
    assert version.status == "invalid"
    assert "expands to more than 1 KiB (8 KiB from 9 KiB)" in version.status_reason


# --- Parquet datasets -------------------------------------------------------------------------


def test_a_parquet_bomb_is_refused_by_the_worker_and_the_web(tmp_path):
    # given 40 MiB of zeros stored in a few KiB
    bomb = parquet_bomb(tmp_path / "bomb.parquet")
    assert bomb.stat().st_size < 400 * 1024
    # then reading it for verification or for evidence is refused before any page is decompressed
    with pytest.raises(loaders.LoadError, match="the Parquet dataset expands to more than 100 times its size"):
        loaders.read_dataset(bomb, "parquet")
    with pytest.raises(loaders.LoadError, match="the Parquet dataset expands to more than 100 times its size"):
        list(loaders.iter_columns(bomb, "parquet", ["label"]))
    # and the upload check refuses it too
    data = bomb.read_bytes()
    with pytest.raises(sniffing.Refused, match="The Parquet file expands to more than 100 times its size"):
        sniffing.detect_dataset(io.BytesIO(data), len(data), None)
    # while an ordinary Parquet dataset reads as before
    plain = tmp_path / "plain.parquet"
    plain.write_bytes(artifacts.parquet_bytes(200))
    assert loaders.read_dataset(plain, "parquet").row_count == 200


def test_a_gzip_bomb_dataset_is_refused_at_upload_and_never_inflated_by_a_worker(tmp_path):
    import gzip

    # given a CSV of 64 MiB gzip-compressed into a few hundred KiB
    bomb = tmp_path / "dataset"  # workers copy a dataset to a file without an extension, as here
    with gzip.open(bomb, "wb", compresslevel=9) as out:
        out.write(b"a,b\n")
        line = b"1,2\n" * (MIB // 4)
        for _ in range(64):
            out.write(line)
    data = bomb.read_bytes()
    assert len(data) < 512 * 1024
    # then the upload check refuses it, having inflated 64 bytes to say what it is
    with pytest.raises(sniffing.Refused, match="gzip-compressed data is not an accepted format"):
        sniffing.detect_dataset(io.BytesIO(data), len(data), None)
    # and a worker handed those bytes reads them as stored (never inflated), and says they are not text
    with pytest.raises(loaders.LoadError, match="column names are not UTF-8 text"):
        loaders.read_dataset(bomb, "csv")


# --- memory, measured in a fresh process -------------------------------------------------------

_PROBE = """
import resource, sys
from django.conf import settings
settings.configure(ASSAY_ARCHIVE_MAX_BYTES=1 << 30, ASSAY_ARCHIVE_MAX_MEMBERS=10000, ASSAY_ARCHIVE_MAX_RATIO=100)
from worker.engines import loaders
import pyarrow.parquet, skops.io  # imported before the baseline
path, fmt = sys.argv[1], sys.argv[2]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    if fmt == "skops":
        loaders.load_artifact(path, fmt)
    else:
        loaders.read_dataset(path, fmt)
    outcome = "loaded"
except loaders.LoadError as exc:
    outcome = str(exc)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(outcome)
print((after - before) // 1024)
"""


@pytest.mark.parametrize("fmt", ["skops", "parquet"])
def test_opening_a_256_mib_bomb_does_not_blow_the_workers_memory(tmp_path, fmt):
    # given a 256 MiB bomb, as reported (a 254 KiB zip), and its Parquet equivalent
    if fmt == "skops":
        bomb = zip_bomb(tmp_path / "bomb.skops", expanded_mib=256)
        assert bomb.stat().st_size < 300 * 1024
    else:
        bomb = parquet_bomb(tmp_path / "bomb.parquet", expanded_mib=256)
    # when a fresh worker process opens it
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE, str(bomb), fmt],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert probe.returncode == 0, probe.stderr
    outcome, grown_mib = probe.stdout.strip().splitlines()
    # then it is refused with the reason, and its peak memory grew by a few MiB, not 256
    assert "expands to more than 100 times its size (256 MiB" in outcome
    assert int(grown_mib) < 32, grown_mib


# --- ONNX external data in subgraphs ------------------------------------------------------------


def _external(name: str):
    import numpy as np
    from onnx import TensorProto, numpy_helper

    tensor = numpy_helper.from_array(np.ones(2, dtype=np.float32), name)
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "weights.bin"
    return tensor


def _if_model(hidden_in: str):
    """Y = If(cond, then: X + W, else: X); W is stored externally in the branch or in a function body."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2])
    cond = helper.make_tensor_value_info("cond", TensorProto.BOOL, [])
    out_then = helper.make_tensor_value_info("then_out", TensorProto.FLOAT, [2])
    out_else = helper.make_tensor_value_info("else_out", TensorProto.FLOAT, [2])
    functions = []
    if hidden_in == "branch":
        then_nodes = [helper.make_node("Add", ["X", "W"], ["then_out"])]
        then_graph = helper.make_graph(then_nodes, "then", [], [out_then], initializer=[_external("W")])
    else:  # a local function whose Constant holds the external tensor
        body = [
            helper.make_node("Constant", [], ["W"], value=_external("W")),
            helper.make_node("Add", ["A", "W"], ["B"]),
        ]
        functions.append(helper.make_function("local", "AddW", ["A"], ["B"], body, [helper.make_opsetid("", 17)]))
        then_graph = helper.make_graph(
            [helper.make_node("AddW", ["X"], ["then_out"], domain="local")], "then", [], [out_then]
        )
    else_graph = helper.make_graph([helper.make_node("Identity", ["X"], ["else_out"])], "else", [], [out_else])
    node = helper.make_node("If", ["cond"], ["Y"], then_branch=then_graph, else_branch=else_graph, name="gate")
    graph = helper.make_graph([node], "main", [cond, x], [y])
    model = helper.make_model(
        graph, functions=functions, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1)]
    )
    model.ir_version = 8
    return model


@pytest.mark.parametrize("hidden_in", ["branch", "function"])
def test_an_onnx_model_hiding_external_data_in_a_subgraph_is_refused(tmp_path, hidden_in):
    # given a model whose only external tensor sits in an If branch (or a local function's body)
    model = _if_model(hidden_in)
    assert not any(t.data_location == 1 for t in model.graph.initializer)  # the main graph is clean
    path = tmp_path / "hidden.onnx"
    path.write_bytes(model.SerializeToString())
    (tmp_path / "weights.bin").write_bytes(b"\0" * 8)  # what a loader following the reference would read
    # when the worker loads it, then it is refused, naming where the tensor hides
    expected = "gate.then_branch" if hidden_in == "branch" else "function local:AddW"
    with pytest.raises(loaders.LoadError, match="ONNX models must be self-contained") as refused:
        loaders.load_artifact(path, "onnx")
    assert "W (" in str(refused.value) and expected in str(refused.value)
    # and the scorer and the explainer, which load through the same checks, refuse it too
    with pytest.raises(loaders.LoadError, match="self-contained"):
        loaders.native_model(path, "onnx")


def test_a_self_contained_model_with_subgraphs_passes_the_walk():
    import onnx

    model = onnx.load_from_string(artifacts.onnx_bytes())
    assert loaders.external_tensors(model) == []
    hidden = _if_model("branch")
    found = loaders.external_tensors(hidden)
    assert found == ["W (main graph > If gate.then_branch)"]
