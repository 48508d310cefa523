"""scripts/supervise.py, the supervisor scripts/run starts the worker and the web server under.

Real processes throughout: the supervisor, the programs it runs, and their children.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]


def wait_for(what: str, predicate, *, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except FileNotFoundError:
        return False


def pids_in(log: Path) -> dict[str, int]:
    """The last ``leader``/``child`` pids a program wrote to its log."""
    text = log.read_text() if log.exists() else ""
    return {k: int(v) for k, v in re.findall(r"(child|leader) (\d+)", text)}


@pytest.fixture
def supervise(tmp_path):
    started: list[subprocess.Popen] = []

    def start(*runs: str, **options: str) -> subprocess.Popen:
        argv = [sys.executable, str(ROOT / "scripts" / "supervise.py")]
        for run in runs:
            argv += ["--run", run]
        for name, value in options.items():
            argv += [f"--{name.replace('_', '-')}", value]
        proc = subprocess.Popen(argv, cwd=tmp_path, stderr=subprocess.PIPE, text=True, start_new_session=True)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def test_a_dead_program_is_restarted_and_the_children_it_left_are_killed(supervise, tmp_path):
    # given a program that starts a child of its own (as a web server starts its workers) and writes both pids
    log = tmp_path / "server.log"
    script = "sleep 300 & echo child $!; echo leader $$; exec sleep 300"
    supervisor = supervise(f"server:{log}:sh -c '{script}'")
    pids = wait_for("both pids", lambda: pids_in(log) if len(pids_in(log)) == 2 else None)

    # when the program's main process is killed
    os.kill(pids["leader"], signal.SIGKILL)

    # then the child it left is killed too, and the program is started again, within a second or so
    wait_for("the orphaned child to be killed", lambda: not alive(pids["child"]))
    wait_for("the restart", lambda: "server: restarted (pid" in log.read_text())
    text = log.read_text()
    assert "server: was killed by SIGKILL after" in text and "restarting in 0.5 s" in text
    wait_for("the new run's pids", lambda: pids_in(log) != pids and len(pids_in(log)) == 2)

    # when the supervisor is stopped (Ctrl-C)
    supervisor.send_signal(signal.SIGINT)
    assert supervisor.wait(timeout=20) == 0

    # then nothing it started is left
    new = pids_in(log)
    assert not alive(new["leader"]) and not alive(new["child"])
    assert log.read_text().rstrip().endswith("server: stopped")


def test_a_program_that_keeps_failing_is_restarted_with_growing_delays_forever(supervise, tmp_path):
    # given a program that fails at once, every time
    log = tmp_path / "failing.log"
    supervisor = supervise(f"failing:{log}:sh -c 'echo run; exit 3'", max_delay="2")

    # when it has failed a few times
    wait_for("five runs", lambda: log.exists() and log.read_text().count("run\n") >= 5, timeout=20)

    # then each restart waited twice as long as the last, up to the limit, and the supervisor keeps going
    delays = [
        float(d) for d in re.findall(r"exited with status 3 after [\d.]+ s; restarting in ([\d.]+) s", log.read_text())
    ]
    assert delays[:4] == [0.5, 1.0, 2.0, 2.0]
    assert supervisor.poll() is None
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(timeout=20) == 0


def test_the_log_is_appended_to_never_truncated(supervise, tmp_path):
    log = tmp_path / "worker.log"
    log.write_text("yesterday's lines\n")
    supervisor = supervise(f"worker:{log}:sh -c 'echo today; exec sleep 300'")
    wait_for("today's line", lambda: "today" in log.read_text())
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(timeout=20) == 0
    assert log.read_text().startswith("yesterday's lines\n")


def test_a_bad_run_spec_is_a_clear_error(supervise):
    proc = supervise("no-colons-here")
    assert proc.wait(timeout=10) == 2
    assert "--run wants NAME:LOG:COMMAND" in proc.stderr.read()
