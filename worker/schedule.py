"""Every periodic job, in one place (run by ``celery beat`` in production, by ``python -m worker --beat`` on the
embedded setup)."""

from django.conf import settings


def beat_schedule() -> dict:
    """The periodic tasks, read from the settings when the Celery app is finalised (run exactly one beat)."""
    return {
        "jobs-sweep": {"task": "jobs.sweep", "schedule": float(settings.ASSAY_SWEEP_INTERVAL_SECONDS)},
        "audit-seal": {"task": "audit.seal", "schedule": float(settings.ASSAY_AUDIT_SEAL_INTERVAL_SECONDS)},
        "notifications-dispatch": {
            "task": "notifications.dispatch",
            "schedule": float(settings.ASSAY_WEBHOOK_DISPATCH_INTERVAL_SECONDS),
        },
        "audit-checkpoint": {"task": "audit.checkpoint", "schedule": float(settings.ASSAY_CHECKPOINT_INTERVAL_SECONDS)},
        "registry-cleanup-uploads": {
            "task": "registry.cleanup_uploads",
            "schedule": float(settings.ASSAY_UPLOAD_CLEANUP_INTERVAL_SECONDS),
        },
        "deployments-tick": {"task": "deployments.tick", "schedule": float(settings.ASSAY_DEPLOY_TICK_SECONDS)},
        "deployments-reconcile": {
            "task": "deployments.reconcile",
            "schedule": float(settings.ASSAY_DEPLOY_RECONCILE_SECONDS),
        },
        "reports-schedules": {
            "task": "reports.schedules",
            "schedule": float(settings.ASSAY_REPORT_SCHEDULE_INTERVAL_SECONDS),
        },
        "releases-expire": {
            "task": "releases.expire",
            "schedule": float(settings.ASSAY_RELEASE_EXPIRY_INTERVAL_SECONDS),
        },
    }
