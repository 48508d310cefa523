"""The dashboard's words: every page shows times, people, environments and enumerated values through
these filters, so a compliance officer reads labels and names, never slugs, and one time format.

``{% load words %}`` then:

- ``{{ when|when }}``: a datetime (or an ISO 8601 string) as ``<time datetime="…">2026-12-07 09:41 UTC</time>``;
  nothing for ``None``.
- ``{{ user|person }}``: "Dana Reyes (dana)", or the username alone when the account has no name.
- ``{{ environment|environment }}``: "Production", "Staging", "Eu west (production)".
- ``{{ value|label:"role" }}``: the label of an enumerated value in one of the ``VOCABULARIES``; an
  unknown value is shown as text with its underscores read as spaces (never as a slug).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from django import template
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html

from apps.audit.choices import Outcome, Source
from apps.deployments.choices import DeploymentKind, DeploymentState, Phase, StepOutcome, Strategy, TargetKind
from apps.evidence.choices import EvidenceKind, RunStatus
from apps.notifications.choices import DeliveryState
from apps.rbac.models import ScopeType, SubjectType
from apps.rbac.roles import Role, Scope
from apps.registry.choices import DatasetStatus, FactsChangeStatus, RiskTier, VersionStatus
from apps.releases.choices import ApprovalDecision, ReleaseStatus, ReviewStatus

register = template.Library()

# The one time format of every page (UTC: the server's zone, and the audit trail's).
TIME_FORMAT = "%Y-%m-%d %H:%M UTC"


def _choices(*enums) -> dict[str, str]:
    return {str(value): str(label) for enum in enums for value, label in enum.choices}


# What the gate answers for a version in an environment, beyond a release request's own states.
GATE_STATUS = {
    **_choices(ReleaseStatus),
    "allowed": "Allowed",
    "emergency": "Released by break-glass",
    "blocked": "Blocked by policy",
    "missing_evidence": "Waiting for evidence",
    "release_required": "No release requested",
    "revalidation_due": "Revalidation due",
    "not_released": "Not released",
}

VOCABULARIES: dict[str, dict[str, str]] = {
    "role": _choices(Role),
    "scope": _choices(Scope),
    "scope_type": _choices(ScopeType),
    "subject_type": _choices(SubjectType),
    "release_status": _choices(ReleaseStatus),
    "gate_status": GATE_STATUS,
    # a decision already given reads in the past tense ("Approve" is the button that gives it)
    "approval_decision": {ApprovalDecision.APPROVE.value: "Approved", ApprovalDecision.REJECT.value: "Rejected"},
    "review_status": _choices(ReviewStatus),
    "rule_result": {
        "pass": "Pass",
        "fail": "Fail",
        "pending": "Pending",
        "warning": "Warning",
        "not_applicable": "Not applicable",
    },
    "severity": {"blocking": "Blocking", "warning": "Warning", "info": "Information"},
    "evidence_kind": _choices(EvidenceKind),
    "run_status": _choices(RunStatus),
    "version_status": _choices(VersionStatus),
    "dataset_status": _choices(DatasetStatus),
    "facts_change_status": _choices(FactsChangeStatus),
    "risk_tier": _choices(RiskTier),
    "delivery_state": _choices(DeliveryState),
    "deployment_state": _choices(DeploymentState),
    "deployment_kind": _choices(DeploymentKind),
    "rollout_phase": _choices(Phase),
    "step_outcome": _choices(StepOutcome),
    "strategy": _choices(Strategy),
    "target_kind": _choices(TargetKind),
    # what the reconciler found on a target (worker/reconciler.py)
    "drift_kind": {
        "unknown_service": "Service not deployed by Assay",
        "unknown_version": "Version nobody deployed",
        "digest_mismatch": "Artifact digest differs",
        "not_approved": "No longer approved",
        "traffic_changed": "Traffic changed by hand",
        "missing": "Service missing",
    },
    "outcome": _choices(Outcome),
    "source": _choices(Source),
    # what an audit event is about; any other type reads as words ("facts_change" -> "Facts change")
    "target_type": {"post_release_review": "Post-release review", "pii_scan": "PII scan", "api_token": "API token"},
    "actor_type": {
        "user": "Person",
        "service_account": "Service account",
        "system": "System",
        "anonymous": "Anonymous",
    },
}


def _readable(value: str) -> str:
    """A value no vocabulary knows, read as words: ``release_required`` -> ``Release required``."""
    return value.replace("_", " ").replace("-", " ").strip().capitalize()


def label_for(value, vocabulary: str) -> str:
    """The label ``value`` has in ``vocabulary`` (for Python callers: views building rows)."""
    if value is None or value == "":
        return ""
    text = str(value)
    return VOCABULARIES[vocabulary].get(text) or _readable(text)


@register.filter
def label(value, vocabulary: str) -> str:
    """``{{ release.status|label:"release_status" }}`` -> "Pending approval"."""
    return label_for(value, vocabulary)


@register.filter
def action_label(action: str) -> str:
    """An audit action code as words: ``release.approval_recorded`` -> "Release: approval recorded"."""
    if not action:
        return ""
    entity, _, verb = str(action).partition(".")
    if not verb:
        return _readable(entity)
    return f"{_readable(entity)}: {verb.replace('_', ' ').replace('.', ' ')}"


def _utc(value) -> datetime | None:
    """A datetime, a date (midnight) or an ISO 8601 string as an aware UTC datetime; None otherwise."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time.min, tzinfo=UTC)
    elif isinstance(value, str) and value:
        moment = parse_datetime(value)
    else:
        return None
    if moment is None:
        return None
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def time_text(value) -> str:
    """The page's time format as plain text (for attributes and messages): "2026-12-07 09:41 UTC"."""
    moment = _utc(value)
    return moment.strftime(TIME_FORMAT) if moment is not None else ""


@register.filter(is_safe=True)
def when(value) -> str:
    """``<time datetime="2026-12-07T09:41:07+00:00">2026-12-07 09:41 UTC</time>``; nothing for no time."""
    moment = _utc(value)
    if moment is None:
        return ""
    return format_html('<time datetime="{}">{}</time>', moment.isoformat(), moment.strftime(TIME_FORMAT))


@register.filter
def when_text(value) -> str:
    """``when`` without the element, for a ``title`` attribute."""
    return time_text(value)


def person_text(value) -> str:
    """A person as pages name them: "Dana Reyes (dana)", or "dana" when the account has no name.

    Takes a user, a service account (named with its owner) or text already naming someone."""
    if value is None or value == "":
        return ""
    if hasattr(value, "get_full_name") and hasattr(value, "username"):
        full = (value.get_full_name() or "").strip()
        return f"{full} ({value.username})" if full else value.username
    owner = getattr(value, "owner", None)
    if owner is not None and hasattr(value, "name"):
        return f"service account {value.name} of {person_text(owner)}"
    return str(value)


@register.filter
def person(value) -> str:
    """``{{ release.requested_by|person }}`` -> "Dana Reyes (dana)"."""
    return person_text(value)


def environment_text(value) -> str:
    """An environment as a label: its name read as words, marked "(production)" when production
    and the name does not already say so."""
    if value is None or value == "":
        return ""
    name = str(getattr(value, "name", value))
    text = _readable(name)
    if getattr(value, "production", False) and "prod" not in name.lower():
        text += " (production)"
    return text


@register.filter
def environment(value) -> str:
    """``{{ release.environment|environment }}`` -> "Production"."""
    return environment_text(value)
