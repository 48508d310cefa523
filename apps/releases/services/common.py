"""What the release services share: the principal they act as, errors, the decision's reading, the row lock, events."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from apps.audit import services as audit
from apps.core.errors import Conflict, NotFound
from apps.core.principals import Principal, PrincipalKind
from apps.jobs import events
from apps.registry.models import ModelVersion

from ..choices import ApprovalDecision, ReleaseStatus
from ..matching import match
from ..models import Approval, Environment, ReleaseRequest

SYSTEM = Principal.system("releases")
# Every release needs at least this, whatever the packs ask: four eyes is never optional.
APPROVAL_FLOOR = (("reviewer", 1),)


class PolicyNotSatisfied(Conflict):
    """The policy decision has blocking violations (409, with the violations)."""

    code = "policy_not_satisfied"
    title = "Policy not satisfied"


class DecisionChanged(Conflict):
    """The decision the approver saw is no longer the request's (409): review it again."""

    code = "decision_changed"
    title = "Decision changed"


class ApprovalNotNeeded(Conflict):
    """The approver's roles fill none of the slots still open (409)."""

    code = "approval_not_needed"
    title = "Approval not needed"


@dataclass(frozen=True)
class ReleaseTarget:
    """A release not yet created, as rbac sees it: the version's team and model, and the environment."""

    version: ModelVersion
    environment: Environment

    def rbac_scope(self) -> tuple[int, int, int]:
        return (self.version.model.owner_team_id, self.version.model_id, self.environment.pk)

    def audit_ref(self) -> tuple[str, str, str]:
        return ("model_version", str(self.version.pk), f"{self.version} to {self.environment.name}")


def _person_id(actor: Principal) -> int | None:
    """The accountable person's user id (a service account's owner)."""
    kind, pk = actor.person_key
    return pk if kind == PrincipalKind.USER else None


def _revalidation_months() -> dict[str, int]:
    """``ASSAY_REVALIDATION_MONTHS`` ("high=12,limited=24,minimal=36") as {risk tier: months}."""
    months = {}
    for part in str(settings.ASSAY_REVALIDATION_MONTHS).split(","):
        if "=" in part:
            tier, _, value = part.partition("=")
            months[tier.strip()] = int(value)
    return months


def _add_months(moment: datetime, months: int) -> datetime:
    year, month = divmod(moment.month - 1 + months, 12)
    day = min(moment.day, 28)
    return moment.replace(year=moment.year + year, month=month + 1, day=day)


def revalidation_date(release: ReleaseRequest, approved_at: datetime) -> datetime | None:
    """When a production approval must be renewed (None outside production or for an unlisted tier)."""
    if not release.environment.production:
        return None
    months = _revalidation_months().get(release.model.risk_tier)
    return _add_months(approved_at, months) if months else None


def required_approvals(decision: dict) -> list[tuple[str, int]]:
    """(role, count) the decision asks for, never less than ``APPROVAL_FLOOR`` in total."""
    required = [(r["role"], int(r["count"])) for r in decision.get("required_approvals", []) if int(r["count"]) > 0]
    return required or list(APPROVAL_FLOOR)


def blocking(decision: dict) -> list[dict]:
    return [v for v in decision.get("violations", []) if v.get("severity") == "blocking"]


def approval_matching(release: ReleaseRequest, approvals: Iterable[Approval] | None = None):
    """The matching of the live approvals onto the decision's required slots."""
    live = [a for a in (approvals if approvals is not None else release.approvals.all()) if not a.void]
    approvers = [(a.approver_id, a.roles) for a in live if a.decision == ApprovalDecision.APPROVE]
    return match(required_approvals(release.decision), approvers)


def _locked(release_id: Any) -> ReleaseRequest:
    release = (
        ReleaseRequest.objects.select_for_update(of=("self",))
        .select_related("version", "model", "environment", "owner_team")
        .filter(public_id=release_id)
        .first()
    )
    if release is None:
        raise NotFound("No such release request.")
    return release


def _event_payload(release: ReleaseRequest) -> dict:
    return {
        "release": str(release.public_id),
        "model": release.model.name,
        "version": release.version.number,
        "environment": release.environment.name,
        "status": release.status,
        "emergency": release.emergency,
    }


def _emit(event: str, release: ReleaseRequest) -> None:
    """Publish ``event`` (a ``release.*`` name) in the caller's transaction, with the request as it is now."""
    payload = {"release_id": release.pk, "team_id": release.owner_team_id, **_event_payload(release)}
    events.publish(event, payload=payload, target=release)


def _pending_status(decision: dict) -> str:
    return ReleaseStatus.PENDING_EVIDENCE if decision.get("missing_evidence") else ReleaseStatus.PENDING_APPROVAL


def _ttl() -> timedelta:
    return timedelta(hours=settings.ASSAY_RELEASE_REQUEST_TTL_HOURS)


def _close(release: ReleaseRequest, *, actor: Principal, status: str, action: str, reason: str, now) -> None:
    before = release.status
    release.status = status
    release.closed_at = now
    release.closed_reason = reason
    release.save(update_fields=["status", "closed_at", "closed_reason", "updated_at"])
    audit.record(
        action=action, actor=actor, target=release, before={"status": before}, after={"status": status}, reason=reason
    )
    _emit(action, release)  # release.rejected, release.expired or release.cancelled
