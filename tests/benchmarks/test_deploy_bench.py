# ruff: noqa: F811 - pytest fixtures imported from other modules are parameters here
"""The deployments benchmark runs end to end in its tiny mode, so it cannot rot unnoticed.

``benchmarks/deploy_bench.py`` is run as the lead runs it, as a script, against the REAL test Kubernetes API
server (``kube_server``: skipped without one, a failure under ``ASSAY_REQUIRE_SERVICES=1``) and a SQLite database
of this test's own: two canary rollouts measured in the script's process and by a real ``python -m worker``, and
two reconciler passes over five seeded deployments in two namespaces. Its figures are not judged (they are the
machine's); what is checked is that every decided step was seen at the server and that the reconciler read
every deployment back as deployed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.worker.kubernetes.conftest import kube_server  # noqa: F401 - the fixture

pytestmark = [pytest.mark.service, pytest.mark.slow, pytest.mark.timeout(900)]

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "deploy_bench.py"


def test_the_deploy_benchmark_runs_end_to_end_in_its_tiny_mode(kube_server, tmp_path):
    # given the test API server and an empty SQLite database
    figures = tmp_path / "figures.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "ASSAY_CACHE"))}
    # when the benchmark runs in its tiny mode
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--steps", "2", "--weights", "50", "--deployments", "5", "--namespaces", "2"]
        + ["--passes", "2", "--database-url", f"sqlite:///{tmp_path / 'bench.sqlite3'}", "--cache-url", ""]
        + ["--work", str(tmp_path / "work"), "--json", str(figures), "--prefix", f"assay-smoke-{uuid.uuid4().hex[:6]}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=850,
        check=False,
    )
    # then it printed its figures beside the machine's facts
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "host speed index" in result.stdout
    assert "decision -> Deployment at server" in result.stdout
    assert "reconciler: 5 deployments over 2 targets" in result.stdout
    data = json.loads(figures.read_text())
    # and each decided step of the canaries (50 %, then the promotion) was matched to its write at the server,
    # in this process and in the worker's
    assert [s["label"] for s in data["steps"]] == ["inproc", "worker"]
    for steps in data["steps"]:
        assert len(steps["decision_to_deployment_ms"]) >= 2 and steps["unmatched"] == 0, steps
        assert all(ms > 0 for ms in steps["decision_to_deployment_ms"]), steps
        assert len(steps["job_queued_to_deployment_ms"]) == len(steps["decision_to_deployment_ms"]), steps
    # and the reconciler read the five deployments back as deployed, sending requests and queries each pass
    passes = data["reconciler"]["passes"]
    assert len(passes) == 2
    assert all(p["requests"] > 0 and p["queries"] > 0 for p in passes), passes
    assert [p["findings"] for p in passes] == [0, 0], passes
