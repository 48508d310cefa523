"""Test-only job kinds, a task and an API view for the cross-process tests (tests/worker/test_processes.py).

Worker processes load this module through ``ASSAY_EXTRA_TASK_MODULES=tests.worker.job_fixtures``
(see ``worker/tasks/__init__.py``). What happens in a worker is written to files under
``ASSAY_TEST_TRACE_DIR``, one line per event, so the test process can see it:

- ``ready-<node name>``: the worker is consuming messages;
- ``executions.log``: ``<job id> <attempt> <pid>`` each time the ``tests.sleep`` handler starts;
- ``deliveries.log``: ``<job id> <pid> <outcome> <task>`` each time a worker finished handling a job
  for a ``jobs.run`` message (``succeeded``, ``skipped``, ...) or took one while draining the queue for
  a ``jobs.wake`` message, so a duplicate delivery is visible;
- ``wakes.log``: ``<pid> <jobs taken>`` for each ``jobs.wake`` message a worker handled.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from celery import shared_task
from celery.signals import task_postrun, worker_ready
from django.db import transaction
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.audit import services as audit
from apps.jobs import services as jobs
from worker.runner import handles

TICK = 0.2  # seconds between progress reports


def trace(name: str, line: str) -> None:
    """Append one line to a trace file (O_APPEND keeps lines from several processes whole)."""
    folder = os.environ.get("ASSAY_TEST_TRACE_DIR")
    if not folder:
        return
    fd = os.open(Path(folder) / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def read_trace(folder: Path, name: str) -> list[list[str]]:
    """The lines of a trace file, split into fields."""
    path = folder / name
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


@handles("tests.sleep")
def sleep_job(job, report):
    """Sleep ``params.seconds``, reporting progress every TICK seconds; record the run's start and end."""
    trace("executions.log", f"{job.pk} {job.attempts} {os.getpid()}")
    seconds = float(job.params.get("seconds", 1))
    ticks = max(1, round(seconds / TICK))
    for i in range(1, ticks + 1):
        time.sleep(TICK)
        report(min(99, int(i * 100 / ticks)), f"slept {i * TICK:.1f} of {seconds:g} s")
    with transaction.atomic():
        audit.record(action="test_job.completed", target=job, after={"seconds": seconds})
    return {"slept": seconds, "attempt": job.attempts, "pid": os.getpid()}


@shared_task(name="tests.record_event")
def record_event(marker: str) -> None:
    """Write one audit event in the worker: its request id comes from the task's headers."""
    with transaction.atomic():
        audit.record(action="test_task.ran", target=("marker", marker, marker))


@worker_ready.connect
def _ready(sender=None, **_: object) -> None:
    trace(f"ready-{sender.hostname}", str(os.getpid()))


@task_postrun.connect
def _delivered(task=None, args=None, retval=None, **_: object) -> None:
    if task is not None and task.name == jobs.RUN_TASK and args:
        trace("deliveries.log", f"{args[0]} {os.getpid()} {retval} run")
    if task is not None and task.name == jobs.WAKE_TASK:
        for job_id, outcome in retval or []:
            trace("deliveries.log", f"{job_id} {os.getpid()} {outcome} wake")
        trace("wakes.log", f"{os.getpid()} {len(retval or [])}")


class SleepJobInput(serializers.Serializer):
    seconds = serializers.FloatField(min_value=0, max_value=60)


class EnqueueSleepJobView(APIView):
    """POST ``{"seconds": n}`` enqueues a ``tests.sleep`` job: 202 with its id (test-only endpoint)."""

    def post(self, request):
        data = SleepJobInput(data=request.data)
        data.is_valid(raise_exception=True)
        with transaction.atomic():
            job = jobs.job_enqueue(kind="tests.sleep", params={"seconds": data.validated_data["seconds"]})
        return Response({"id": job.pk}, status=status.HTTP_202_ACCEPTED)
