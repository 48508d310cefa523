# ruff: noqa: F811 - pytest fixtures imported from other modules are parameters here
"""One serving process and one router, started for real (``python -m worker.serving.server`` / ``.router``)
and spoken to over HTTP: the V2 endpoints, the refusals, the metrics, the router's admin API.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.registry import artifacts as registry_artifacts
from tests.worker.local_target_fixtures import (  # noqa: F401 - fixtures
    Artifact,
    artifacts,
    classifier,
    features,
    onnx_artifact,
    onnx_outputs,
    skops_artifact,
    wait_for,
)
from worker.drivers import local_processes as procs
from worker.serving import metrics
from worker.serving.client import V2Client, get

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def started(tmp_path):
    """Start real processes on free ports; each is stopped (its whole group) when the test ends."""
    pids = []

    def start(module: str, *args: str) -> str:
        port = procs.free_port(None, set())
        pid = procs.start_detached(["-m", module, *args, f"--port={port}"], log=tmp_path / f"{module}.{port}.log")
        pids.append(pid)
        url = f"http://127.0.0.1:{port}"

        def answering():
            assert procs.running(pid), (tmp_path / f"{module}.{port}.log").read_text()
            try:
                return get(url, "/v2/health/ready", timeout=0.5)[0] == 200
            except OSError:
                return False

        wait_for(f"{module} to answer", answering, timeout=60)
        return url

    yield start
    for pid in pids:
        procs.stop(pid)


def serve(started, artifact: Artifact, name: str = "credit", version: str = "4") -> str:
    return started(
        "worker.serving.server",
        f"--artifact={artifact.path}",
        f"--format={artifact.format}",
        f"--digest={artifact.digest}",
        f"--name={name}",
        f"--model-version={version}",
    )


def _native(tmp_path: Path, fmt: str):
    """(artifact, expected labels, expected probabilities) for ``features(30)`` from the library itself."""
    x = features(30, seed=2)
    if fmt == "onnx":
        artifact = onnx_artifact(tmp_path)
        labels, probabilities = onnx_outputs(artifact, x)
        return artifact, x, labels, probabilities
    if fmt == "skops":
        model = classifier("plus")
        return skops_artifact(tmp_path), x, model.predict(x), model.predict_proba(x)
    if fmt == "xgboost":
        import xgboost

        data = registry_artifacts.xgboost_json_bytes()
        booster = xgboost.Booster()
        booster.load_model(bytearray(data))
        p = booster.predict(xgboost.DMatrix(x))
    else:
        import lightgbm

        data = registry_artifacts.lightgbm_bytes()
        p = lightgbm.Booster(model_str=data.decode()).predict(x)
    path = tmp_path / f"model.{fmt}"
    path.write_bytes(data)
    artifact = Artifact(path=path, digest=hashlib.sha256(data).hexdigest(), format=fmt)
    return artifact, x, (p >= 0.5).astype(int), np.column_stack([1 - p, p])


@pytest.mark.parametrize("fmt", ["onnx", "skops", "xgboost", "lightgbm"])
def test_the_v2_endpoints_answer_with_the_models_own_predictions(started, artifacts, fmt):
    """A real serving process per format (onnxruntime, skops, XGBoost, LightGBM) answering real HTTP."""
    artifact, x, labels, probabilities = _native(artifacts, fmt)
    url = serve(started, artifact)
    with V2Client(url) as client:
        assert client.json("GET", "/v2/health/live") == (200, {"live": True})
        assert client.json("GET", "/v2/models/credit/ready") == (200, {"ready": True})
        status, meta = client.json("GET", "/v2/models/credit")
        assert status == 200 and meta["name"] == "credit" and meta["versions"] == ["4"]
        assert meta["parameters"]["digest"] == artifact.digest
        assert [o["name"] for o in meta["outputs"]] == ["predictions", "probabilities"]
        assert meta["inputs"][0]["shape"] == [-1, x.shape[1]]

        # flat data, FP32
        status, doc = client.infer("credit", x.tolist())
        assert status == 200 and doc["model_name"] == "credit" and doc["model_version"] == "4" and doc["id"]
        predictions, probs = doc["outputs"]
        assert predictions["name"] == "predictions" and predictions["shape"] == [30]
        assert predictions["data"] == labels.tolist()
        assert probs["shape"] == [30, 2]
        assert np.allclose(np.array(probs["data"]).reshape(30, 2), probabilities, atol=1e-5)

        # nested data, FP64, an id echoed, one output asked for
        body = {
            "id": "req-1",
            "inputs": [{"name": "x", "shape": [30, x.shape[1]], "datatype": "FP64", "data": x.astype(float).tolist()}],
            "outputs": [{"name": "predictions"}],
        }
        status, doc = client.json("POST", "/v2/models/credit/versions/4/infer", body)
        assert status == 200 and doc["id"] == "req-1" and [o["name"] for o in doc["outputs"]] == ["predictions"]
        assert doc["outputs"][0]["data"] == labels.tolist()


def test_bad_input_is_a_400_saying_why_and_counted_and_the_server_keeps_answering(started, artifacts):
    """A real ONNX serving process sent broken requests over HTTP; its /metrics counts them by status."""
    artifact = onnx_artifact(artifacts)
    url = serve(started, artifact)
    good = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [0.1, 0.2, 0.3, 0.4]}]}

    def tensor(**change):
        return {"inputs": [{**good["inputs"][0], **change}]}

    cases = [
        (b"{not json", "the body is not JSON"),
        ({"inputs": []}, '"inputs" must be a non-empty list'),
        (tensor(datatype="BYTES"), "datatype 'BYTES' is not served"),
        (tensor(shape=[2, 4]), "shape [2, 4] needs 8 value(s); data has 4"),
        (tensor(data=["a", "b", "c", "d"]), "data must hold only numbers"),
        (tensor(data=[[1, 2], [3]]), "data is not a rectangular list of numbers"),
        (tensor(datatype="INT64", data=[0.5, 1, 2, 3]), "data must hold only integers"),
        (tensor(shape=[1, 5], data=[1, 2, 3, 4, 5]), "the model expects 4 feature(s) per row; the request has 5"),
        (tensor(shape=[1, 1, 4]), "has 3 dimensions"),
    ]
    with V2Client(url) as client:
        for body, reason in cases:
            status, doc = client.json("POST", "/v2/models/credit/infer", body)
            assert status == 400 and reason in doc["error"], (body, doc)
        assert client.json("GET", "/v2/models/other")[0] == 404
        assert client.json("GET", "/v2/models/credit/infer")[0] == 405
        status, doc = client.json("POST", "/v2/models/credit/infer", good)
        expected = onnx_outputs(artifact, np.array([[0.1, 0.2, 0.3, 0.4]], dtype=np.float32))[0]
        assert status == 200 and doc["outputs"][0]["data"] == expected.tolist()
        status, text = client.request("GET", "/metrics")
    samples = metrics.parse(text.decode())
    assert status == 200
    assert metrics.value(samples, "assay_inference_requests_total") == len(cases) + 1
    assert metrics.value(samples, "assay_inference_errors_total", status="400") == len(cases)
    assert metrics.value(samples, "assay_inference_latency_seconds_count") == len(cases) + 1
    assert metrics.buckets(samples, "assay_inference_latency_seconds")[-1] == (float("inf"), len(cases) + 1)
    info = next(lab for name, lab, _ in samples if name == "assay_model_info")
    assert info == {"model": "credit", "version": "4", "digest": artifact.digest, "format": "onnx"}


def test_a_server_refuses_to_start_on_bytes_that_are_not_the_digest(artifacts):
    """The real serving command, given another digest than its file's: it exits with the reason, serving nothing."""
    artifact = onnx_artifact(artifacts)
    port = procs.free_port(None, set())
    wrong = "0" * 64
    args = [f"--artifact={artifact.path}", "--format=onnx", f"--digest={wrong}", "--name=credit"]
    result = subprocess.run(
        [sys.executable, "-m", "worker.serving.server", *args, "--model-version=1", f"--port={port}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"refusing to start: the artifact's sha256 is {artifact.digest}, not the approved digest {wrong}" in (
        result.stderr
    )
    assert procs.port_free(port)


def test_the_router_admin_needs_its_token_and_refuses_a_stale_fence(started, tmp_path):
    """The real router process: its admin API over HTTP, its state file after each accepted change."""
    state = tmp_path / "router"
    state.mkdir()
    token = "t0ken-for-this-test-only-0123456789"
    (state / "router.token").write_text(token)
    url = started("worker.serving.router", f"--state-dir={state}")
    config = {
        "fence": 3,
        "model": "m",
        "members": [{"version_id": "a", "version": "1", "digest": "d", "port": 9, "weight": 100}],
    }

    with V2Client(url) as anonymous:
        status, doc = anonymous.json("PUT", "/admin/v1/services/credit", config)
        assert status == 401 and token not in json.dumps(doc)
    with V2Client(url, token="wrong-token-0123456789") as wrong:
        assert wrong.json("GET", "/admin/v1/services")[0] == 401
    with V2Client(url, token=token) as admin:
        assert admin.json("PUT", "/admin/v1/services/credit", config)[0] == 200
        status, doc = admin.json("PUT", "/admin/v1/services/credit", {**config, "fence": 2})
        assert status == 409 and doc["held_fence"] == 3
        assert admin.json("PUT", "/admin/v1/services/credit", {**config, "members": []})[0] == 200  # same fence: ok
        assert admin.json("PUT", "/admin/v1/services/Bad_Name", config)[0] == 400
        assert admin.json("PUT", "/admin/v1/services/credit", {**config, "fence": "3"})[0] == 400
        assert admin.json("DELETE", "/admin/v1/services/credit?fence=1")[0] == 409
        assert admin.json("DELETE", "/admin/v1/services/credit?fence=4")[0] == 200
        assert admin.json("PUT", "/admin/v1/services/credit", config)[0] == 409  # the removed service's fence stays
        assert admin.json("POST", "/v2/models/credit/infer", {})[0] == 404
    saved = json.loads((state / "router-state.json").read_text())
    assert saved["services"]["credit"] == {"fence": 4, "model": "m", "removed": True, "members": []}
