from django.apps import AppConfig


def _workers_check() -> tuple[bool, list[str], dict]:
    from django.conf import settings

    from .selectors import worker_health

    if settings.CELERY_TASK_ALWAYS_EAGER:  # development: jobs run in the process that enqueued them, no worker
        return True, [], {"eager": True}

    health = worker_health()
    details = health.as_dict()
    details.pop("ok")
    return health.ok, list(health.reasons), details


class JobsConfig(AppConfig):
    name = "apps.jobs"
    label = "jobs"

    def ready(self) -> None:
        from apps.core import health

        health.register("workers", _workers_check)
