"""Celery tasks, one module per domain; importing this package registers them all."""

from importlib import import_module

from django.conf import settings

from . import audit, deployments, evidence, jobs, notifications, registry, releases, reports  # noqa: F401

for _module in settings.ASSAY_EXTRA_TASK_MODULES:
    import_module(_module)
