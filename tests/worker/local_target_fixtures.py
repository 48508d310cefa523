"""Real models and a real local target for the serving tests: small scikit-learn models trained here, converted
with skl2onnx or saved with skops, served by real processes that every test's finalizer stops.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from apps.deployments.plans import Member, Plan
from worker.drivers import local_processes as procs
from worker.drivers.local import LocalDriver


def features(rows: int, width: int = 4, seed: int = 0) -> np.ndarray:
    """Rows of float32 features (exactly representable, so JSON round-trips them unchanged)."""
    rng = np.random.default_rng(seed)
    return (np.round(rng.normal(size=(rows, width)) * 64) / 64).astype(np.float32)


@functools.cache
def classifier(rule: str, width: int = 4):
    """A logistic regression trained on ``rule``: "plus" (x0 + x1/2 > 0) or "minus" (x0 - x1/2 > 0)."""
    from sklearn.linear_model import LogisticRegression

    x = features(400, width, seed=11)
    sign = 1 if rule == "plus" else -1
    y = (x[:, 0] + sign * 0.5 * x[:, 1] > 0).astype(int)
    return LogisticRegression().fit(x, y)


@dataclass(frozen=True)
class Artifact:
    path: Path
    digest: str
    format: str

    @property
    def uri(self) -> str:
        return self.path.as_uri()


def _written(path: Path, data: bytes, fmt: str) -> Artifact:
    path.write_bytes(data)
    return Artifact(path=path, digest=hashlib.sha256(data).hexdigest(), format=fmt)


def onnx_artifact(folder: Path, rule: str = "plus", width: int = 4) -> Artifact:
    from skl2onnx import to_onnx

    model = to_onnx(classifier(rule, width), features(1, width), options={"zipmap": False})
    return _written(folder / f"{rule}-{width}.onnx", model.SerializeToString(), "onnx")


def skops_artifact(folder: Path, rule: str = "plus") -> Artifact:
    import skops.io as sio

    return _written(folder / f"{rule}.skops", sio.dumps(classifier(rule)), "skops")


def onnx_outputs(artifact: Artifact, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What onnxruntime itself answers for the file: (labels, probabilities)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(artifact.path), providers=["CPUExecutionProvider"])
    labels, probabilities = session.run(["label", "probabilities"], {session.get_inputs()[0].name: x})
    return labels, probabilities


def member(artifact: Artifact, version: int, weight: int, *, shadow: bool = False, uri: str = "") -> Member:
    return Member(
        deployment_id=f"dep-{version}",
        release_id=f"rel-{version}",
        version_id=f"ver-{version}",
        version=str(version),
        digest=artifact.digest,
        artifact_uri=uri or artifact.uri,
        format=artifact.format,
        weight=weight,
        shadow=shadow,
    )


def plan(*members: Member, fence: int = 1, service: str = "credit") -> Plan:
    return Plan(service=service, model="credit-model", members=tuple(members), fence=fence)


def processes_of(state: Path) -> list[int]:
    """Every live process whose command line names ``state`` (recorded or not: a leak shows up here too)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and procs.running(int(entry.name), str(state)):
            found.append(int(entry.name))
    return found


def kill_all(state: Path) -> None:
    """SIGKILL to every process whose command line names ``state`` (never anything else), and wait for them."""
    for pid in processes_of(state):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while processes_of(state) and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.fixture
def artifacts(tmp_path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    return folder


@pytest.fixture
def target(tmp_path):
    """A ``LocalDriver`` on a fresh state folder; every process it started is killed afterwards."""
    state = tmp_path / "target"
    driver = LocalDriver({"name": "test", "state_dir": str(state), "ready_wait_seconds": 30}, {})
    yield driver
    kill_all(driver.state)


def wait_for(what: str, predicate, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(0.05)
