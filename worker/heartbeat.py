"""A worker's heartbeat: a thread that rewrites the worker's row every ``ASSAY_WORKER_HEARTBEAT_SECONDS``.

Started by the broker-less worker (``python -m worker``) and, through Celery's ``worker_ready``
signal, by every Celery worker's main process (Celery imports this module at start:
``CELERY_IMPORTS`` in the settings). ``/api/v1/health/`` reads the rows.
"""

from __future__ import annotations

import logging
import threading

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.jobs import services as jobs

logger = logging.getLogger(__name__)


class Heartbeat:
    """Write this worker's heartbeat now and then every interval, from a daemon thread, until ``stop()``."""

    def __init__(self, *, kind: str, beat: bool = False, name: str | None = None) -> None:
        self.name = name or jobs.worker_name()
        self.kind = kind
        self.beat = beat
        self.started_at = timezone.now()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat_once(self) -> None:
        jobs.worker_heartbeat(name=self.name, kind=self.kind, beat=self.beat, started_at=self.started_at)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="assay-heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self.beat_once()
                except Exception:  # the database is away for a moment: health says so; try again
                    logger.warning("could not write the worker heartbeat", exc_info=True)
                    connection.close()
                self._stop.wait(settings.ASSAY_WORKER_HEARTBEAT_SECONDS)
        finally:
            connection.close()

    def stop(self) -> None:
        """Stop beating and delete this worker's row (a killed worker's row ages out instead)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            jobs.worker_stopped(name=self.name)
        except Exception:
            logger.warning("could not delete the worker heartbeat", exc_info=True)


_celery_heartbeat: Heartbeat | None = None


@worker_ready.connect
def _start_celery_heartbeat(sender=None, **_: object) -> None:
    """Every Celery worker writes a heartbeat row from its main process."""
    global _celery_heartbeat
    _celery_heartbeat = Heartbeat(kind="celery", beat=bool(getattr(sender, "beat", None)))
    _celery_heartbeat.start()


@worker_shutdown.connect
def _stop_celery_heartbeat(**_: object) -> None:
    if _celery_heartbeat is not None:
        _celery_heartbeat.stop()
