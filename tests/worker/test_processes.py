"""Jobs across processes: real Celery workers on the suite's own database and broker.

Each test starts ``celery worker`` subprocesses pointed at the test database (a file on SQLite,
``test_<name>`` on PostgreSQL) and at the broker the suite is configured with (the embedded
``filesystem://`` folder, Redis or RabbitMQ), with a lease of a few seconds. The test-only job kinds
live in ``tests/worker/job_fixtures.py``. Worker output is copied into the test's captured output,
so a failing test shows it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from django.urls import path

from apps.audit import context
from apps.audit.models import AuditEvent
from apps.jobs import services as jobs
from apps.jobs.models import Job, JobStatus
from controlplane import urls as root_urls
from controlplane.celery import app
from tests.support.db import database_url
from tests.worker.job_fixtures import EnqueueSleepJobView, read_trace

ROOT = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 3

urlpatterns = [
    path("api/v1/test-jobs/", EnqueueSleepJobView.as_view()),
    *root_urls.urlpatterns,
]

pytestmark = [
    pytest.mark.broker,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls(__name__),
    pytest.mark.timeout(120),
]


def wait_for(
    what: str, predicate: Callable, *, timeout: float = 30.0, interval: float = 0.1, state: Callable | None = None
):
    """Poll until ``predicate()`` is truthy and return its value.

    At the deadline, fail naming ``what`` and, if given, the current ``state()`` (e.g. the job row).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what}" + (f"; {state()}" if state else ""))
        time.sleep(interval)


def job_state(job: Job) -> Callable[[], str]:
    """A description of the job row as it is now, for failure messages."""

    def describe() -> str:
        row = Job.objects.filter(pk=job.pk).values(
            "status", "attempts", "progress", "message", "worker", "lease_expires_at", "error"
        )
        return f"job {job.pk} is {row.first()}"

    return describe


def purge_queue() -> int:
    """Drop messages other tests left in the broker's default queue (their jobs are gone with their data)."""
    with app.connection_for_write() as conn:
        try:
            return conn.default_channel.queue_purge("celery") or 0
        except Exception as exc:  # the queue may not exist yet (RabbitMQ): nothing to drop
            sys.stderr.write(f"purge of the celery queue skipped: {exc!r}\n")
            return 0


class Workers:
    """Celery worker subprocesses sharing the test's database and broker; all killed at teardown."""

    def __init__(self, env: dict, trace: Path) -> None:
        self.env = env
        self.trace = trace
        self.procs: dict[str, subprocess.Popen] = {}
        self._pumps: list[threading.Thread] = []

    def start(self, *names: str) -> None:
        """Start one worker per name (concurrency 1, prefork) and wait until each consumes."""
        for name in names:
            proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "controlplane", "worker", "--concurrency", "1"]
                + ["--pool", "prefork", "-Q", "celery", "-n", f"{name}@%h", "--loglevel", "INFO"]
                + ["--without-gossip", "--without-mingle", "--without-heartbeat"],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: a kill takes the pool child too
            )
            self.procs[name] = proc
            pump = threading.Thread(target=self._pump, args=(name, proc, self.log_path(name)), daemon=True)
            pump.start()
            self._pumps.append(pump)
        for name in names:
            wait_for(f"worker {name} to be ready", lambda name=name: self._ready(name))

    def _ready(self, name: str) -> bool:
        proc = self.procs[name]
        if proc.poll() is not None:
            raise AssertionError(f"worker {name} exited with {proc.returncode} before it was ready (output above)")
        return any(self.trace.glob(f"ready-{name}@*"))

    def log_path(self, name: str) -> Path:
        """The file that holds everything worker ``name`` wrote (its log), as it wrote it."""
        return self.trace.parent / f"worker-{name}.log"

    @staticmethod
    def _pump(name: str, proc: subprocess.Popen, log: Path) -> None:
        # Copy the worker's output, line by line and prefixed, into this process's stderr, which pytest
        # captures at the file-descriptor level and prints when the test fails, and into its log file.
        with open(log, "ab") as kept:
            for line in proc.stdout:
                kept.write(line)
                kept.flush()
                os.write(2, f"[worker {name}] ".encode() + line)

    def kill(self, name: str) -> None:
        """SIGKILL the worker and its pool child, as a machine or container dying would."""
        proc = self.procs[name]
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for name, proc in self.procs.items():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                sys.stderr.write(f"worker {name} (pid {proc.pid}) did not exit after SIGKILL\n")
        for pump in self._pumps:
            pump.join(timeout=5)


@pytest.fixture
def workers(transactional_db, settings, tmp_path):
    """Start workers with ``workers.start("a", ...)``; every one is killed when the test ends."""
    settings.ASSAY_JOB_LEASE_SECONDS = LEASE_SECONDS
    trace = tmp_path / "trace"
    trace.mkdir()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "controlplane.settings",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        # The same var folder as this process, so a filesystem:// broker shares its queue folder.
        "ASSAY_VAR_DIR": str(settings.VAR_DIR),
        "ASSAY_JOB_LEASE_SECONDS": str(LEASE_SECONDS),
        "ASSAY_EXTRA_TASK_MODULES": "tests.worker.job_fixtures",
        "ASSAY_TEST_TRACE_DIR": str(trace),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
    }
    dropped = purge_queue()
    if dropped:
        sys.stderr.write(f"dropped {dropped} message(s) left in the celery queue by earlier tests\n")
    group = Workers(env, trace)
    yield group
    group.stop_all()


def finished(job: Job) -> bool:
    return Job.objects.filter(pk=job.pk, status__in=(JobStatus.SUCCEEDED, JobStatus.FAILED)).exists()


def traced(workers: Workers, name: str, job: Job) -> list[list[str]]:
    """The lines of a worker trace file about this job."""
    return [line for line in read_trace(workers.trace, name) if line[0] == str(job.pk)]


def job_events(job: Job) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(target_type="job", target_id=str(job.pk)).order_by("id"))


def test_a_job_survives_a_worker_killed_mid_job(workers):
    # given a worker running a 5-second job that reports progress
    workers.start("first")
    with context_request("kill-test-0001"):
        job = jobs.job_enqueue(kind="tests.sleep", params={"seconds": 5})
    wait_for(
        "the job to report progress",
        lambda: Job.objects.filter(pk=job.pk, progress__gt=0).exists(),
        state=job_state(job),
    )

    # when the worker is killed mid-job
    workers.kill("first")

    # then the row still says running, under the dead worker's lease
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING
    assert job.attempts == 1

    # and once the lease has expired the sweeper puts it back in the queue
    swept = wait_for(
        "the sweeper to re-queue the job", lambda: jobs.job_sweep(), timeout=LEASE_SECONDS * 10, state=job_state(job)
    )
    assert swept == [job.pk]
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED

    # and a second worker picks it up and finishes it
    workers.start("second")
    wait_for("the job to finish", lambda: finished(job), state=job_state(job))
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.attempts == 2
    runs = traced(workers, "executions.log", job)
    assert [attempt for _, attempt, _ in runs] == ["1", "2"]
    assert runs[0][2] != runs[1][2]  # two different worker processes
    events = job_events(job)
    assert [e.action for e in events] == [
        "job.started",
        "job.requeued",
        "job.started",
        "test_job.completed",
        "job.succeeded",
    ]
    # every event of the job's own run names the request that enqueued it
    assert {e.request_id for e in events if e.source == "worker"} == {"kill-test-0001"}


def test_a_slow_live_job_runs_once_despite_sweeps_and_a_duplicate_message(workers, make_user, api_client_for):
    # given two workers, and a 7-second job enqueued through the API (lease: 3 s, renewed every 0.2 s)
    workers.start("a", "b")
    user = make_user()
    client = api_client_for(user)
    response = client.post("/api/v1/test-jobs/", {"seconds": 7}, format="json", HTTP_X_REQUEST_ID="ci-run-42.step-7")
    assert response.status_code == 202, response.content
    assert response["X-Request-ID"] == "ci-run-42.step-7"
    job = Job.objects.get(pk=response.json()["id"])
    wait_for("the job to start", lambda: Job.objects.filter(pk=job.pk, progress__gt=0).exists(), state=job_state(job))

    # when its Celery message is delivered a second time and the sweeper runs again and again
    app.send_task(jobs.RUN_TASK, args=[job.pk])
    sweeps = []

    def swept_until_finished() -> bool:
        sweeps.append(jobs.job_sweep())
        return finished(job)

    wait_for("the job to finish", swept_until_finished, interval=0.25, state=job_state(job))
    wait_for("the duplicate message to be handled", lambda: len(traced(workers, "deliveries.log", job)) >= 2)
    deliveries = traced(workers, "deliveries.log", job)

    # then the sweeps left it alone, the duplicate was skipped, and it ran exactly once
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert (job.finished_at - job.started_at).total_seconds() > LEASE_SECONDS  # it outlived its first lease
    assert len(sweeps) > 1 and all(ids == [] for ids in sweeps)
    assert sorted((outcome, task) for _, _, outcome, task in deliveries) == [("skipped", "run"), ("succeeded", "wake")]
    assert len(traced(workers, "executions.log", job)) == 1
    assert job.attempts == 1
    events = job_events(job)
    assert [e.action for e in events] == ["job.started", "test_job.completed", "job.succeeded"]
    # and the events written by the worker carry the API request's id and actor
    assert {(e.source, e.request_id, e.actor_type, e.actor_id) for e in events} == {
        ("worker", "ci-run-42.step-7", "user", str(user.pk))
    }


def test_a_task_carries_the_request_id_into_the_worker(workers):
    # given a worker
    workers.start("solo")
    marker = uuid.uuid4().hex

    # when a task is sent while handling request "req-7f3a"
    with context_request("req-7f3a"):
        app.send_task("tests.record_event", args=[marker])

    # then the event the worker writes carries that request id
    event = wait_for(
        "the worker's audit event", lambda: AuditEvent.objects.filter(target_type="marker", target_id=marker).first()
    )
    assert (event.action, event.source, event.request_id) == ("test_task.ran", "worker", "req-7f3a")


@contextlib.contextmanager
def context_request(request_id: str):
    """Run a block as if serving the request with this id (the audit context's request id)."""
    previous = context.current()
    context.update(request_id=request_id)
    try:
        yield
    finally:
        context.set_context(previous)


def test_jobs_enqueued_together_are_woken_by_a_few_messages_and_each_runs_once(workers, settings):
    # given two idle workers, and the queued-job grace (the sweeper's re-send) far away
    settings.ASSAY_JOB_QUEUED_GRACE_SECONDS = 3600
    workers.start("a", "b")
    sent_before = jobs.doorbell.sent

    # when 12 short jobs are enqueued one after another, each in its own transaction (12 commits, 12 rings)
    started = time.monotonic()
    with context_request("burst-0001"):
        burst = [jobs.job_enqueue(kind="tests.sleep", params={"seconds": 0.4}) for _ in range(12)]
    enqueue_s = time.monotonic() - started

    # then every job finishes, without any sweep, each run exactly once
    for job in burst:
        wait_for(f"job {job.pk} to finish", lambda job=job: finished(job), state=job_state(job))
    runs = {job.pk: traced(workers, "executions.log", job) for job in burst}
    assert all(len(r) == 1 for r in runs.values()), runs
    assert {Job.objects.get(pk=job.pk).attempts for job in burst} == {1}
    # and both workers took part (the first rang for help while more jobs waited)
    assert len({r[0][2] for r in runs.values()}) == 2
    # and this process sent one wake-up per interval at most, not one per job
    sent = jobs.doorbell.sent - sent_before
    assert 1 <= sent <= 2 + enqueue_s / settings.ASSAY_JOB_WAKE_INTERVAL_SECONDS
    assert sent < len(burst)
    # and the events of each run name the request that enqueued it
    assert set(
        AuditEvent.objects.filter(action="job.started", target_id__in=[str(j.pk) for j in burst]).values_list(
            "request_id", flat=True
        )
    ) == {"burst-0001"}


def test_a_job_enqueued_right_after_a_wake_up_still_starts_promptly(workers, settings):
    # given an idle worker, and the sweeper's re-send of unclaimed jobs far away
    settings.ASSAY_JOB_QUEUED_GRACE_SECONDS = 3600
    workers.start("solo")
    first = jobs.job_enqueue(kind="tests.sleep", params={"seconds": 0})
    wait_for("the first job to finish", lambda: finished(first), state=job_state(first))

    # when two jobs are enqueued within one wake-up interval (the second ring waits for the interval)
    jobs.job_enqueue(kind="tests.sleep", params={"seconds": 0})
    committed = time.monotonic()
    second = jobs.job_enqueue(kind="tests.sleep", params={"seconds": 0})

    # then the second still starts soon: a message follows every ring within the interval
    wait_for("the second job to finish", lambda: finished(second), timeout=10, state=job_state(second))
    assert time.monotonic() - committed < 10
    second.refresh_from_db()
    assert second.status == JobStatus.SUCCEEDED and second.attempts == 1


def test_a_celery_worker_writes_a_heartbeat_and_removes_it_when_it_stops(workers):
    from apps.jobs.models import WorkerHeartbeat

    # when a Celery worker is ready
    workers.start("beating")
    proc = workers.procs["beating"]

    # then it has written its heartbeat row, as a Celery worker
    row = wait_for(
        "the worker's heartbeat",
        lambda: WorkerHeartbeat.objects.filter(name__endswith=f":{proc.pid}").first(),
    )
    assert row.kind == "celery"

    # and when it is stopped cleanly, its row goes
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert not WorkerHeartbeat.objects.filter(name__endswith=f":{proc.pid}").exists()
