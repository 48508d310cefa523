from django.apps import AppConfig


def _workers_check() -> tuple[bool, list[str], dict]:
    from .selectors import worker_health

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
