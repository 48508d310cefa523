"""The broker-less worker of the embedded setup: ``python -m worker [--concurrency N] [--beat]``.

With ``CELERY_BROKER_URL=database://`` there is no broker: the job table is the queue and the
workers look at it themselves. Each of ``concurrency`` threads drains the queued jobs
(``worker.runner.run_queued``), then waits until the wake-up file (``ASSAY_WORKER_WAKE_FILE``,
touched by the doorbell of every process that enqueues a job) changes, or at most
``ASSAY_WORKER_POLL_SECONDS``, and looks again. A job is picked up within about 0.1 s of its
commit on the same machine, and within the poll interval from anywhere else.

With ``--beat`` the worker also runs the periodic jobs of ``worker/schedule.py`` in a thread of
their own, each every ``schedule`` seconds counted from the worker's start (a run that overruns
skips the missed slots rather than bunching them). Run exactly one worker with ``--beat``;
``scripts/run`` does. Every worker writes a heartbeat (``worker.heartbeat``).

SIGTERM or SIGINT stops the worker: no new job is taken, a running job is given
``--stop-timeout`` seconds, then the process exits; a job cut off keeps its lease and is
re-queued by the sweeper when the lease expires.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time

logger = logging.getLogger("worker")

WAKE_CHECK_SECONDS = 0.05  # how often a waiting thread looks at the wake-up file (a stat call)


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return None


class StandaloneWorker:
    """Drain threads, an optional beat thread and a heartbeat, until ``stop`` is set."""

    def __init__(self, *, concurrency: int = 2, beat: bool = False) -> None:
        from django.conf import settings

        self.concurrency = concurrency
        self.beat = beat
        self.poll = settings.ASSAY_WORKER_POLL_SECONDS
        self.wake_file = settings.ASSAY_WORKER_WAKE_FILE
        self.stop = threading.Event()

    def run(self, *, stop_timeout: float = 10.0) -> None:
        from worker.heartbeat import Heartbeat

        heartbeat = Heartbeat(kind="database", beat=self.beat)
        heartbeat.beat_once()  # alive before anything else, so health turns ok at once
        heartbeat.start()
        threads = [
            threading.Thread(target=self._drain_loop, name=f"assay-drain-{n}", daemon=True)
            for n in range(self.concurrency)
        ]
        if self.beat:
            threads.append(threading.Thread(target=self._beat_loop, name="assay-beat", daemon=True))
        for thread in threads:
            thread.start()
        logger.info(
            "worker %s ready: %d thread(s), %s, no broker (polls the job table every %g s)",
            heartbeat.name,
            self.concurrency,
            "running the periodic jobs" if self.beat else "no periodic jobs",
            self.poll,
        )
        self.stop.wait()
        logger.info("worker %s stopping", heartbeat.name)
        deadline = time.monotonic() + stop_timeout
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        heartbeat.stop()
        busy = [t.name for t in threads if t.is_alive()]
        if busy:
            logger.warning(
                "worker %s: %s still busy; their jobs go back to the queue when the lease expires", heartbeat.name, busy
            )
        logger.info("worker %s stopped", heartbeat.name)

    # -- the queue ---------------------------------------------------------------------------

    def _drain_loop(self) -> None:
        from django.db import connection

        from apps.jobs import services as jobs
        from worker.runner import run_queued

        seen = _mtime(self.wake_file)
        try:
            while not self.stop.is_set():
                try:
                    if jobs.jobs_waiting():
                        run_queued(should_stop=self.stop.is_set)
                except Exception:  # the database is away for a moment (or locked): try again after a pause
                    logger.warning("could not take jobs from the table; trying again", exc_info=True)
                    connection.close()
                    self.stop.wait(self.poll)
                deadline = time.monotonic() + self.poll
                while not self.stop.is_set() and time.monotonic() < deadline:
                    now = _mtime(self.wake_file)
                    if now != seen:
                        seen = now
                        break
                    self.stop.wait(WAKE_CHECK_SECONDS)
        finally:
            connection.close()

    # -- the periodic jobs -------------------------------------------------------------------

    def _beat_loop(self) -> None:
        from django.db import connection

        from controlplane.celery import app
        from worker.schedule import beat_schedule

        schedule = {name: (entry["task"], float(entry["schedule"])) for name, entry in beat_schedule().items()}
        start = time.monotonic()
        due = {name: start + interval for name, (_, interval) in schedule.items()}
        try:
            while not self.stop.is_set():
                name = min(due, key=due.get)
                wait = due[name] - time.monotonic()
                if wait > 0:
                    self.stop.wait(wait)
                    continue
                task_name, interval = schedule[name]
                self._run_periodic(app.tasks[task_name], task_name)
                due[name] += interval
                now = time.monotonic()
                if due[name] <= now:  # it overran its slot(s): keep the grid, skip what was missed
                    due[name] += interval * (int((now - due[name]) // interval) + 1)
        finally:
            connection.close()

    @staticmethod
    def _run_periodic(task, task_name: str) -> None:
        from django.db import connection

        from apps.audit import context

        context.enter_task({}, task_name=task_name)
        started = time.monotonic()
        try:
            task()
            logger.debug("periodic %s done in %.0f ms", task_name, (time.monotonic() - started) * 1000)
        except Exception:
            logger.exception("periodic %s failed", task_name)
            connection.close()
        finally:
            context.reset()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m worker", description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=2, help="jobs run side by side (threads); default 2")
    parser.add_argument("--beat", action="store_true", help="also run the periodic jobs (run exactly one such worker)")
    parser.add_argument("--stop-timeout", type=float, default=10.0, help="seconds a running job is given at stop")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
    import django

    django.setup()
    import worker.tasks  # noqa: F401  (registers every handler and periodic task)

    service = StandaloneWorker(concurrency=max(1, args.concurrency), beat=args.beat)

    def _stop(signum, _frame) -> None:
        logger.info("worker: got %s", signal.Signals(signum).name)
        service.stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    service.run(stop_timeout=args.stop_timeout)
