"""A coalescing wake-up: at most one message per process per interval, however often it is rung.

Job rows are the queue (see ``apps.jobs.services``); the broker only carries a doorbell that
tells some worker to look at the table. Ringing is cheap (a lock and a flag), and one thread
per process sends the message: at once when the last one went out at least ``interval``
seconds ago, else when the interval is up. So every ring is followed by a message sent after
it, within ``interval`` seconds, which is what lets a worker that drains the table until it
finds nothing miss no job: a job committed before its ring is visible to the drain that the
following message starts.

Nothing here assumes a single process: every web process and every worker process has its
own doorbell, and a forked child (gunicorn, Celery's prefork pool) starts its own thread on
its first ring. A ring that cannot be sent (broker down) is logged and dropped; the jobs it
was for stay queued and are sent again by the sweeper (``ASSAY_JOB_QUEUED_GRACE_SECONDS``).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


class Doorbell:
    """Call ``send`` after each ``ring()``, at most once per ``interval`` seconds, from a thread of its own."""

    def __init__(self, send: Callable[[], None], interval: Callable[[], float] | float) -> None:
        self._send = send
        self._interval = interval if callable(interval) else (lambda: interval)
        self._reset()
        atexit.register(self.flush)

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._cond = threading.Condition()
        self._rung = False
        self._sending = False
        self._last_sent = float("-inf")
        self._thread: threading.Thread | None = None
        self.sent = 0  # messages sent by this process (tests and benchmarks read it)

    def ring(self) -> None:
        """Ask for a message; returns at once. Rings within one interval become one message."""
        if self._pid != os.getpid():  # a forked child: the parent's thread and lock are not ours
            self._reset()
        with self._cond:
            if self._rung:
                return
            self._rung = True
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="assay-doorbell", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if not self._rung:  # (a flush may have taken the ring meanwhile)
                        self._cond.wait()
                        continue
                    wait = self._last_sent + self._interval() - time.monotonic()
                    if wait <= 0:
                        break
                    self._cond.wait(wait)
                self._rung = False
                self._sending = True
                self._last_sent = time.monotonic()
            try:
                self._deliver()
            finally:
                with self._cond:
                    self._sending = False
                    self._cond.notify_all()

    def _deliver(self) -> None:
        try:
            self._send()
            self.sent += 1
        except Exception:
            logger.warning("could not send a wake-up to the workers; the sweeper will send the jobs", exc_info=True)

    def flush(self, timeout: float = 5.0) -> None:
        """Send a pending ring now, and let a message being sent finish (at process exit, so that a
        short-lived process's last ring is not left to the sweeper)."""
        if self._pid != os.getpid():
            return
        with self._cond:
            self._cond.wait_for(lambda: not self._sending, timeout)
            pending, self._rung = self._rung, False
            if pending:
                self._last_sent = time.monotonic()
        if pending:
            self._deliver()
