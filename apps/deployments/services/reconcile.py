"""What the reconciler records: per target, what runs there that no approved, current release accounts for."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from apps.audit import services as audit
from apps.audit.choices import Outcome
from apps.core.errors import NotFound
from apps.jobs import events

from ..models import DeploymentTarget
from .common import SYSTEM


@transaction.atomic(durable=True)
def target_reconciled(*, target_id: int, findings: list[dict]) -> list[dict]:
    """Store what the reconciler found on the target; the findings that are new since its last look.

    Each finding is ``{"key", "kind", "service", "message", ...}``; a finding already recorded (same key) is
    not reported again. Each new one is audited ``deployment.drift_detected`` (outcome ``failed``) and, when it
    concerns a team's model, published as ``deployment.drift_detected`` (that team's webhooks get it; a
    service nobody deployed stays on the trail for admins); findings that are gone are
    audited ``deployment.drift_cleared``. A look that finds what it found before writes no audit event.
    """
    target = DeploymentTarget.objects.select_for_update(of=("self",)).select_related("environment").filter(pk=target_id)
    target = target.first()
    if target is None:
        raise NotFound("No such deployment target.")
    before = {f["key"]: f for f in target.drift or []}
    now_found = {f["key"]: f for f in findings}
    new = [f for key, f in now_found.items() if key not in before]
    gone = [f for key, f in before.items() if key not in now_found]
    target.drift = list(now_found.values())
    target.reconciled_at = timezone.now()
    target.save(update_fields=["drift", "reconciled_at", "updated_at"])
    for finding in new:
        audit.record(
            action="deployment.drift_detected",
            actor=SYSTEM,
            outcome=Outcome.FAILED,
            target=target,
            after=finding,
            reason=finding["message"],
            artifact_sha256=finding.get("digest", "") or "",
        )
        if finding.get("team_id") is None:
            continue  # nobody's model: on the trail for admins, never broadcast to every team's webhooks
        payload = {
            "team_id": finding["team_id"],
            "target": target.name,
            "environment": target.environment.name,
            **{k: v for k, v in finding.items() if k not in ("key", "team_id")},
        }
        events.publish("deployment.drift_detected", payload=payload, target=target)
    for finding in gone:
        audit.record(
            action="deployment.drift_cleared", actor=SYSTEM, target=target, before=finding, reason=finding["message"]
        )
    return new
