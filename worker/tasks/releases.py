"""Release upkeep: expire open requests past their time."""

from celery import shared_task

from apps.releases import services


@shared_task(name="releases.expire")
def expire() -> int:
    """Expire open release requests past ``expires_at`` (each audited ``release.expired``); safe to repeat."""
    return services.releases_expire_due()
