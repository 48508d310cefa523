"""Expiry: open requests past their time to live are closed (the periodic job)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.audit import services as audit
from apps.core.errors import Conflict, Denied, NotFound, ValidationFailed
from apps.core.principals import Principal, PrincipalKind
from apps.jobs import events
from apps.rbac import services as rbac
from apps.registry.choices import RiskTier, VersionStatus
from apps.registry.models import ModelVersion

from . import gates
from .choices import LIVE, OPEN, ApprovalDecision, ReleaseStatus, ReviewStatus
from .matching import match
from .models import Approval, Environment, PostReleaseReview, ReleaseRequest

logger = logging.getLogger(__name__)


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
