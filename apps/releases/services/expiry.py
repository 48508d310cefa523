"""Expiry: open requests past their time to live are closed (the periodic job)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from ..choices import OPEN, ReleaseStatus
from ..models import ReleaseRequest
from .common import SYSTEM, _close


def releases_expire_due(*, now: datetime | None = None) -> int:
    """Expire open requests past their ``expires_at`` (the periodic job); each audited ``release.expired``."""
    now = now or timezone.now()
    due = ReleaseRequest.objects.filter(status__in=OPEN, expires_at__lte=now).values_list("public_id", flat=True)
    count = 0
    for public_id in list(due):
        with transaction.atomic():
            release = ReleaseRequest.objects.select_for_update(of=("self",)).filter(public_id=public_id).first()
            if release is None or release.status not in OPEN or release.expires_at is None or release.expires_at > now:
                continue
            _close(
                release, actor=SYSTEM, status=ReleaseStatus.EXPIRED, action="release.expired", reason="expired", now=now
            )
            count += 1
    return count
