"""``.ci/run``'s PostgreSQL + Redis pass keeps every test whose outcome can depend on the configured servers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _collected(*paths: str, only_server_tests: bool) -> dict[str, set[str]]:
    """The test names each file collects, by file (one pytest run for all the files)."""
    env = {**os.environ, "ASSAY_SERVER_TESTS_ONLY": "1" if only_server_tests else "0"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", *paths],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    found: dict[str, set[str]] = {path: set() for path in paths}
    for line in done.stdout.splitlines():
        path, sep, name = line.partition("::")
        if sep:
            found[path].add(name)
    return found


def test_the_server_pass_keeps_database_cache_and_broker_tests_and_leaves_the_rest_to_the_first_pass():
    files = (
        "tests/core/test_throttling.py",
        "tests/core/test_health.py",
        "tests/core/test_negotiation.py",
        "tests/deployments/test_kube_rollouts.py",
    )
    everything = _collected(*files, only_server_tests=False)
    kept = _collected(*files, only_server_tests=True)
    # kept: the tests using the database, the one marked backend (it reads the configured cache) and the one
    # marked broker
    assert "test_anonymous_requests_are_limited_per_address" in kept[files[0]]
    assert "test_the_cache_holding_the_counters_is_shared_by_processes" in kept[files[0]]
    assert "test_health_is_public_and_reports_database_and_broker" in kept[files[1]]
    assert kept[files[0]] == everything[files[0]] and kept[files[1]] == everything[files[1]]
    # left to the first pass: the content-negotiation tests, which touch no server, and the rollouts on a
    # Kubernetes API server, which use the database but are about the cluster (marked embedded_pass)
    assert everything[files[2]] and everything[files[3]]
    assert kept[files[2]] == set() and kept[files[3]] == set()
