"""Start the real web server (Granian, as ``scripts/run`` and production do) on the suite's database."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def start_granian(port: int, env: dict, log: Path) -> subprocess.Popen:
    """Granian with 2 workers on ``port``, in a session of its own (kill its group to stop it), once
    ``/api/v1/health/`` answers 200; its output goes to ``log``. Fails with the log's tail if it
    exits or has not answered within 60 s."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("granian")), "--interface", "wsgi", "--host", "127.0.0.1"]
            + ["--port", str(port), "--workers", "2", "--blocking-threads", "2", "--log-level", "warning"]
            + ["controlplane.wsgi:application"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"granian exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/api/v1/health/")
            if conn.getresponse().status == 200:
                conn.close()
                return proc
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError(f"granian did not answer within 60 s:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
