"""The embedded setup's broker-less worker (``python -m worker``) and its supervisor, as real processes.

Workers run on the suite's own database (a file on SQLite, ``test_<name>`` on PostgreSQL) with
``CELERY_BROKER_URL=database://``: no broker, the job table is the queue. The supervisor is
``scripts/supervise.py``, as ``scripts/run`` starts it. Output of every process is copied into the
test's captured output, so a failing test shows it.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from apps.jobs import services as jobs
from apps.jobs.models import JobStatus, WorkerHeartbeat
from tests.support.db import database_url
from tests.worker.job_fixtures import read_trace
from tests.worker.test_processes import finished, job_state, wait_for

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


class Processes:
    """Subprocesses in process groups of their own, output pumped to stderr; all killed at teardown."""

    def __init__(self, env: dict) -> None:
        self.env = env
        self.procs: list[subprocess.Popen] = []
        self._pumps: list[threading.Thread] = []

    def start(self, label: str, argv: list[str], *, lines: list[str] | None = None, **env: str) -> subprocess.Popen:
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**self.env, **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        pump = threading.Thread(target=self._pump, args=(label, proc, lines), daemon=True)
        pump.start()
        self._pumps.append(pump)
        return proc

    @staticmethod
    def _pump(label: str, proc: subprocess.Popen, lines: list[str] | None) -> None:
        for line in proc.stdout:
            os.write(2, f"[{label}] ".encode() + line)
            if lines is not None:
                lines.append(line.decode())

    def worker(self, *args: str, lines: list[str] | None = None, **env: str) -> subprocess.Popen:
        return self.start("worker", [sys.executable, "-m", "worker", *args], lines=lines, **env)

    def stop_all(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        for pump in self._pumps:
            pump.join(timeout=5)


@pytest.fixture
def processes(transactional_db, settings, tmp_path):
    """Start processes on the test database without a broker; each one is killed when the test ends."""
    trace = tmp_path / "trace"
    trace.mkdir()
    wake = tmp_path / "worker.wake"
    # this process enqueues as the embedded setup does: no broker, a touch of the wake-up file
    settings.CELERY_BROKER_URL = "database://"
    settings.ASSAY_WORKER_WAKE_FILE = str(wake)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "controlplane.settings",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": "database://",
        "ASSAY_VAR_DIR": str(settings.VAR_DIR),
        "ASSAY_WORKER_WAKE_FILE": str(wake),
        "ASSAY_WORKER_HEARTBEAT_SECONDS": "0.5",
        "ASSAY_EXTRA_TASK_MODULES": "tests.worker.job_fixtures",
        "ASSAY_TEST_TRACE_DIR": str(trace),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
    }
    group = Processes(env)
    group.trace = trace
    yield group
    group.stop_all()


def alive_workers() -> list[str]:
    return list(WorkerHeartbeat.objects.order_by("name").values_list("name", flat=True))


def pid_of(name: str) -> int:
    return int(name.rsplit(":", 1)[1])


def pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_queued_job_is_taken_at_once_through_the_wake_up_file_without_a_broker(processes):
    # given a worker that polls the table only every 30 s
    processes.worker("--concurrency", "1", ASSAY_WORKER_POLL_SECONDS="30")
    wait_for("the worker's heartbeat", alive_workers)
    time.sleep(0.5)  # it has looked at the empty table and waits

    # when a job is enqueued (its commit touches the wake-up file)
    started = time.monotonic()
    job = jobs.job_enqueue(kind="tests.sleep", params={"seconds": 0.2})

    # then the worker runs it well before its next poll
    wait_for("the job to finish", lambda: finished(job), timeout=10, state=job_state(job))
    assert time.monotonic() - started < 5
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error


def test_health_is_degraded_without_a_worker_and_ok_with_one(processes, anon_client, settings):
    settings.ASSAY_WORKER_STALE_SECONDS = 3
    # given no worker: degraded
    assert anon_client.get("/api/v1/health/").json()["status"] == "degraded"

    # when a worker starts, health turns ok
    worker = processes.worker("--concurrency", "1")
    wait_for("health to be ok", lambda: anon_client.get("/api/v1/health/").json()["status"] == "ok")

    # and when it is killed (no clean stop), health turns degraded once its heartbeat is 3 s old
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    killed_at = time.monotonic()
    body = wait_for(
        "health to be degraded",
        lambda: (b := anon_client.get("/api/v1/health/").json())["status"] == "degraded" and b,
        timeout=15,
    )
    assert 2 <= time.monotonic() - killed_at < 10
    assert body["reasons"][0].startswith("no worker has been seen in the last 3 s")

    # and a worker that stops cleanly removes its row at once
    worker = processes.worker("--concurrency", "1")
    wait_for("its heartbeat", lambda: worker.pid in [pid_of(n) for n in alive_workers()])
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=20) == 0
    assert worker.pid not in [pid_of(n) for n in alive_workers()]


def test_the_periodic_jobs_run_on_schedule_in_the_beat_worker(processes):
    # given a worker with --beat, sealing the audit trail every second (its log lines carry each run's time)
    lines: list[str] = []
    proc = processes.worker(
        "--concurrency", "1", "--beat", lines=lines, ASSAY_AUDIT_SEAL_INTERVAL_SECONDS="1", ASSAY_LOG_LEVEL="DEBUG"
    )
    wait_for("the worker's heartbeat", alive_workers)

    # when it runs for about 4.5 s
    time.sleep(4.5)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    time.sleep(0.2)  # the last lines through the pump

    # then the seal ran once a second, on a grid that does not drift
    stamps = [
        datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f")
        for line in lines
        if (m := re.match(r"(\S+ \S+) DEBUG worker periodic audit\.seal done", line))
    ]
    assert 3 <= len(stamps) <= 5, "".join(lines[-40:])
    gaps = [(b - a).total_seconds() for a, b in zip(stamps, stamps[1:], strict=False)]
    assert all(0.8 <= gap <= 1.2 for gap in gaps), gaps


def test_the_supervisor_restarts_a_killed_worker_and_the_queued_job_then_runs(processes, tmp_path):
    # given the worker under the supervisor, as scripts/run starts it, its output appended to a log
    log = tmp_path / "worker.log"
    log.write_text("an earlier run's line\n")
    command = f"{sys.executable} -m worker --concurrency 1"
    supervisor = processes.start(
        "supervisor", [sys.executable, "scripts/supervise.py", "--run", f"worker:{log}:{command}"]
    )
    first = wait_for("the first worker's heartbeat", alive_workers, timeout=30)[0]

    # when the worker is killed (as the kernel's OOM killer or a crash would), and a job is queued meanwhile
    os.kill(pid_of(first), signal.SIGKILL)
    killed_at = time.monotonic()
    job = jobs.job_enqueue(kind="tests.sleep", params={"seconds": 0.2})

    # then a new worker is up within seconds
    second = wait_for("a new worker", lambda: [n for n in alive_workers() if pid_of(n) != pid_of(first)], timeout=15)[0]
    assert time.monotonic() - killed_at < 10
    # and it runs the job
    wait_for("the job to finish", lambda: finished(job), timeout=30, state=job_state(job))
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert [row[2] for row in read_trace(processes.trace, "executions.log")] == [str(pid_of(second))]

    # and the restart is in the log, which kept what was there before
    text = log.read_text()
    assert text.startswith("an earlier run's line\n")
    assert "worker: was killed by SIGKILL" in text
    assert "worker: restarted (pid" in text

    # when the supervisor is stopped as Ctrl-C would
    supervisor.send_signal(signal.SIGINT)
    assert supervisor.wait(timeout=30) == 0

    # then no worker is left running
    wait_for("the worker to be gone", lambda: not pid_exists(pid_of(second)), timeout=5)
    assert "worker: stopped" in log.read_text()
