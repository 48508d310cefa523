"""Environments: where versions are released to."""

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


# ---------------------------------------------------------------------------------------------
# Environments and the break-glass review


@transaction.atomic
def environment_create(
    *,
    actor: Principal,
    name: str,
    production: bool = False,
    requires_change_reference: bool = False,
    description: str = "",
) -> Environment:
    """Define a new environment (admins). Audited ``environment.created``."""
    rbac.require(actor, "accounts.manage", audit_action="environment.created")
    if Environment.objects.filter(name=name).exists():
        raise Conflict(f"An environment named {name!r} exists already.")
    env = Environment.objects.create(
        name=name, production=production, requires_change_reference=requires_change_reference, description=description
    )
    audit.record(
        action="environment.created",
        actor=actor,
        target=env,
        after={"name": name, "production": production, "requires_change_reference": requires_change_reference},
    )
    return env
