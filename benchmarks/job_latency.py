"""Send-to-start latency of background jobs: from the enqueueing commit to the worker's claim.

    .venv/bin/python benchmarks/job_latency.py [--jobs 40] [--burst 200]

Starts one Celery worker (prefork, concurrency 2) on a fresh PostgreSQL database and a Redis
broker, then enqueues, from this process, (a) ``--jobs`` jobs one at a time, 0.25 s apart (a
quiet system: each is alone), and (b) ``--burst`` jobs back to back, each in its own transaction
(a busy web process). A job's latency is its ``started_at`` minus the moment its transaction
committed. The jobs are the test suite's ``tests.sleep`` kind with 0 seconds (one 0.2 s tick), so a
quiet job's figure is the queue's own cost, and a burst's is bounded by the worker's two processes
(0.1 s a job). Prints p50 / p90 / max for each, and how many messages this process sent.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
import machine  # noqa: E402
import servers  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--db", default="assay_bench_jobs")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--work", default="/tmp/assay-bench-jobs")
    args = parser.parse_args()

    database_url = servers.recreate_database(args.pg, args.db)
    servers.flush_redis(args.broker)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "controlplane.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": args.broker,
        "ASSAY_VAR_DIR": args.work,
        "ASSAY_EXTRA_TASK_MODULES": "tests.worker.job_fixtures",
        "ASSAY_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    os.environ.update(env)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import transaction

    from apps.jobs import services as jobs
    from apps.jobs.models import Job

    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "controlplane", "worker", "--concurrency", "2", "--pool", "prefork"]
        + ["--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        time.sleep(6)  # the worker connects and starts its pool

        def enqueue() -> tuple[int, float]:
            with transaction.atomic():
                job = jobs.job_enqueue(kind="tests.sleep", params={"seconds": 0})
            return job.pk, time.time()

        def latencies(sent: list[tuple[int, float]], timeout: float = 120) -> list[float]:
            ids = [pk for pk, _ in sent]
            deadline = time.monotonic() + timeout
            while Job.objects.filter(pk__in=ids, started_at__isnull=True).exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            started = dict(Job.objects.filter(pk__in=ids).values_list("pk", "started_at"))
            return [(started[pk].timestamp() - at) * 1000 if started.get(pk) else float("inf") for pk, at in sent]

        def describe(label: str, values: list[float]) -> None:
            values = sorted(values)
            p = lambda q: values[min(len(values) - 1, int(q * len(values)))]  # noqa: E731
            print(
                f"{label:<34} n={len(values):<4} p50 {statistics.median(values):7.1f} ms  p90 {p(0.9):7.1f} ms  "
                f"max {values[-1]:7.1f} ms"
            )

        print(machine.line())
        enqueue()  # warm the worker and this process's connections
        time.sleep(2)
        quiet = []
        for _ in range(args.jobs):
            quiet.append(enqueue())
            time.sleep(0.25)
        describe("one job at a time (0.25 s apart)", latencies(quiet))
        began = time.monotonic()
        burst = [enqueue() for _ in range(args.burst)]
        enqueue_s = time.monotonic() - began
        burst_latencies = latencies(burst)
        describe(f"burst of {args.burst} ({args.burst / enqueue_s:.0f}/s)", burst_latencies)
        sent = getattr(getattr(jobs, "doorbell", None), "sent", None)
        print(
            f"messages sent by this process: {sent if sent is not None else 'one per job'}"
            f" for {args.jobs + args.burst + 1} jobs; measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
        )
        print(machine.line())
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
