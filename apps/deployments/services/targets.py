"""Deployment targets: created, changed and deleted by admins; credentials encrypted at rest, never shown."""

from __future__ import annotations

import json
from typing import Any

from django.db import IntegrityError, transaction

from apps.audit import services as audit
from apps.core.encryption import Sealer, fingerprint
from apps.core.errors import Conflict, NotFound, ValidationFailed
from apps.core.principals import Principal
from apps.rbac import services as rbac
from apps.rbac.models import Environment

from .. import target_settings
from ..choices import ACTIVE, TargetKind
from ..models import Deployment, DeploymentTarget

CREDENTIALS = Sealer(
    purpose=b"assay.target-credentials.v1",
    key_setting="ASSAY_CREDENTIALS_ENCRYPTION_KEY",
    what="target's credentials",
)


def _environment(name: str) -> Environment:
    env = Environment.objects.filter(name=name).first()
    if env is None:
        known = sorted(Environment.objects.values_list("name", flat=True))
        raise ValidationFailed(
            f"Unknown environment {name!r}; known environments: {', '.join(known) or 'none defined'}.",
            errors={"environment": [f"Use one of: {', '.join(known)}."]},
            extra={"valid_values": {"environment": known}},
        )
    return env


def _kind(kind: str) -> str:
    if kind not in TargetKind.values:
        raise ValidationFailed(
            f"Unknown target kind {kind!r}; choose one of {', '.join(TargetKind.values)}.",
            errors={"kind": [f"Use one of: {', '.join(TargetKind.values)}."]},
            extra={"valid_values": {"kind": TargetKind.values}},
        )
    return kind


def _sealed(kind: str, credentials: dict) -> tuple[str, str]:
    """(encrypted, fingerprint) of the credentials, or ("", "") for none."""
    checked = target_settings.checked_credentials(kind, credentials)
    if not checked:
        return "", ""
    plain = json.dumps(checked, sort_keys=True)
    return CREDENTIALS.encrypt(plain), fingerprint(plain)


def _shown(target: DeploymentTarget) -> dict:
    """A target as the audit trail keeps it: settings and whether credentials are set, never the credentials."""
    return {
        "name": target.name,
        "kind": target.kind,
        "environment": target.environment.name,
        "settings": target.settings,
        # (keys named "credential..." are redacted by the trail: these say only whether and which)
        "access_set": target.credentials_set,
        "access_fingerprint": target.credentials_fingerprint,
        "enabled": target.enabled,
        "description": target.description,
    }


def credentials_of(target: DeploymentTarget) -> dict:
    """The target's credentials in clear, for a worker building the driver (never log or show them)."""
    if not target.credentials_encrypted:
        return {}
    return json.loads(CREDENTIALS.decrypt(target.credentials_encrypted))


@transaction.atomic(durable=True)
def target_create(
    *,
    actor: Principal,
    name: str,
    kind: str,
    environment: str,
    settings: dict | None = None,
    credentials: dict | None = None,
    enabled: bool = True,
    description: str = "",
) -> DeploymentTarget:
    """Add a deployment target (global admins: ``deployments.manage_targets``). Audited ``deployment_target.created``
    (the credentials appear only as set, with a fingerprint)."""
    rbac.require(actor, "deployments.manage_targets", audit_action="deployment_target.created")
    kind = _kind(kind)
    env = _environment(environment)
    checked = target_settings.checked_settings(kind, settings or {})
    sealed, mark = _sealed(kind, credentials or {})
    target = DeploymentTarget(
        name=name,
        kind=kind,
        environment=env,
        settings=checked,
        credentials_encrypted=sealed,
        credentials_fingerprint=mark,
        enabled=enabled,
        description=(description or "").strip(),
    )
    try:
        with transaction.atomic():
            target.save()
    except IntegrityError:
        raise Conflict(f"A target named {name!r} exists already.") from None
    audit.record(action="deployment_target.created", actor=actor, target=target, after=_shown(target))
    return target


def _target_locked(target_id: Any) -> DeploymentTarget:
    target = (
        DeploymentTarget.objects.select_for_update(of=("self",))
        .select_related("environment")
        .filter(public_id=target_id)
        .first()
    )
    if target is None:
        raise NotFound("No such deployment target.")
    return target


@transaction.atomic(durable=True)
def target_update(*, actor: Principal, target_id: Any, **changes: Any) -> DeploymentTarget:
    """Change a target's settings, environment, enabled flag or description; its credentials are replaced only
    when ``credentials`` is given (``{}`` clears them). Its kind never changes. Audited
    ``deployment_target.updated``."""
    rbac.require(actor, "deployments.manage_targets", audit_action="deployment_target.updated")
    target = _target_locked(target_id)
    unknown = set(changes) - {"settings", "credentials", "environment", "enabled", "description"}
    if unknown:
        raise ValidationFailed(f"A target's {', '.join(sorted(unknown))} cannot be changed.")
    before = _shown(target)
    if "environment" in changes:
        env = _environment(changes["environment"])
        if env.pk != target.environment_id and _active_on(target):
            raise Conflict(f"Target {target.name} has an active deployment: it cannot move to another environment.")
        target.environment = env
    if "settings" in changes:
        target.settings = target_settings.checked_settings(target.kind, changes["settings"] or {})
    if "credentials" in changes:
        target.credentials_encrypted, target.credentials_fingerprint = _sealed(
            target.kind, changes["credentials"] or {}
        )
    if "enabled" in changes:
        target.enabled = bool(changes["enabled"])
    if "description" in changes:
        target.description = (changes["description"] or "").strip()
    target.save()
    after = _shown(target)
    changed = {k for k in after if after[k] != before[k]}
    audit.record(
        action="deployment_target.updated",
        actor=actor,
        target=target,
        before={k: before[k] for k in changed},
        after={k: after[k] for k in changed},
    )
    return target


def _active_on(target: DeploymentTarget) -> Deployment | None:
    return Deployment.objects.filter(target=target, state__in=ACTIVE).first()


@transaction.atomic(durable=True)
def target_delete(*, actor: Principal, target_id: Any) -> None:
    """Delete a target that no deployment ever used; refused (409) while a deployment on it is active, and
    for a target with a deployment history (disable it instead). Audited ``deployment_target.deleted``."""
    rbac.require(actor, "deployments.manage_targets", audit_action="deployment_target.deleted")
    target = _target_locked(target_id)
    active = _active_on(target)
    if active is not None:
        raise Conflict(
            f"Target {target.name} has an active deployment ({active.public_id}, {active.state}): "
            "halt or roll it back first."
        )
    if Deployment.objects.filter(target=target).exists():
        raise Conflict(f"Target {target.name} has a deployment history: disable it instead of deleting it.")
    before = _shown(target)
    audit.record(action="deployment_target.deleted", actor=actor, target=target, before=before)
    target.delete()
