"""The Celery app. Tasks live in ``worker/tasks``; periodic jobs in ``worker/schedule.py``."""

import os

from celery import Celery
from celery.signals import before_task_publish, task_postrun, task_prerun, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")

app = Celery("assay")
app.config_from_object("django.conf:settings", namespace="CELERY")


@app.on_after_finalize.connect
def _configure(sender: Celery, **_: object) -> None:
    from django.conf import settings

    from worker.schedule import beat_schedule

    sender.conf.beat_schedule = beat_schedule()
    if settings.CELERY_BROKER_URL.startswith("filesystem"):
        for key in ("data_folder_in", "control_folder", "processed_folder"):
            os.makedirs(settings.CELERY_BROKER_TRANSPORT_OPTIONS[key], exist_ok=True)


app.autodiscover_tasks(lambda: ["worker"], related_name="tasks")


@before_task_publish.connect
def _carry_request_context(headers: dict | None = None, **_: object) -> None:
    """Carry the request id and the acting principal into the task's headers."""
    from apps.audit.context import current

    if headers is not None:
        headers.update(current().as_headers())


@task_prerun.connect
def _enter_task_context(task=None, **_: object) -> None:
    from apps.audit.context import enter_task
    from apps.core import request_cache

    enter_task(getattr(task.request, "headers", None) or {}, task_name=task.name)
    request_cache.begin()  # nothing a task remembers outlives it


@task_postrun.connect
def _leave_task_context(**_: object) -> None:
    from apps.audit.context import reset
    from apps.core import request_cache

    reset()
    request_cache.end()


@worker_process_init.connect
def _close_inherited_connections(**_: object) -> None:
    from django.db import connections

    for conn in connections.all():
        conn.close()
