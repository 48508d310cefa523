"""A reviewer's verdict on one finding of a PII scan."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from apps.audit import services as audit
from apps.core.errors import Conflict, ValidationFailed
from apps.core.principals import Principal
from apps.jobs import events

from ..choices import EvidenceKind, RunStatus
from ..models import EvidenceRun, FindingReview, FindingVerdict
from .common import _locked_run, _requester


def _finding_ids(run: EvidenceRun) -> set[str]:
    return {f.get("id") for f in (run.summary or {}).get("findings", [])}


@transaction.atomic
def evidence_finding_review(*, actor: Principal, run_id: Any, finding: str, verdict: str, reason: str) -> FindingReview:
    """Record a reviewer's verdict on one finding of a succeeded PII scan (false positive, or confirmed).

    Needs ``evidence.review`` (reviewers, compliance officers). The reason is mandatory. The
    newest verdict on a finding counts. Audited and published ``evidence_finding.reviewed`` (what the
    policies read may have changed, so the releases of the run's subject are judged again).
    """
    run = _locked_run(actor, run_id, "evidence.review", "evidence_finding.reviewed")
    if run.kind != EvidenceKind.PII_SCAN or run.status != RunStatus.SUCCEEDED:
        raise Conflict("Only the findings of a succeeded PII scan can be reviewed.")
    if finding not in _finding_ids(run):
        raise ValidationFailed(
            f"finding: the run has no finding {finding!r}.", errors={"finding": [f"unknown finding: {finding}"]}
        )
    if not verdict:
        raise ValidationFailed(
            "verdict: required; choose false_positive or confirmed (there is no default).",
            errors={"verdict": ["Required."]},
        )
    if verdict not in FindingVerdict.values:
        raise ValidationFailed(
            f"verdict: choose {' or '.join(FindingVerdict.values)}.", errors={"verdict": ["Unknown verdict."]}
        )
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("reason: say why (mandatory).", errors={"reason": ["Required."]})
    if len(reason) > 2000:
        raise ValidationFailed("reason: at most 2000 characters.", errors={"reason": ["Too long."]})
    requester = _requester(actor)
    review = FindingReview.objects.create(
        run=run,
        finding=finding,
        verdict=verdict,
        reason=reason,
        reviewer_id=requester["requested_by_id"],
        reviewer_service_account_id=requester["requested_by_service_account_id"],
    )
    audit.record(
        action="evidence_finding.reviewed",
        actor=actor,
        target=review,
        related=run,
        after={"finding": finding, "verdict": verdict},
        reason=reason,
    )
    events.publish(
        "evidence_finding.reviewed",
        payload={
            "review_id": review.pk,
            "run_id": run.pk,
            "version_id": run.version_id,
            "dataset_id": run.dataset_id,
            "finding": finding,
            "verdict": verdict,
        },
        target=review,
    )
    return review
