"""The review a break-glass release opens, closed by a compliance officer."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.audit import services as audit
from apps.core.errors import Conflict, Denied, NotFound, ValidationFailed
from apps.core.principals import Principal, PrincipalKind
from apps.rbac import services as rbac

from ..choices import ReviewStatus
from ..models import PostReleaseReview
from .common import _locked, _person_id


@transaction.atomic
def post_release_review_close(*, actor: Principal, release_id: Any, findings: str) -> PostReleaseReview:
    """A compliance officer closes the review a break-glass release opened, with findings. Audited."""
    release = _locked(release_id)
    # Decide first: whether a release has a review is not for those who may not see the release.
    rbac.require(actor, "releases.review", release, audit_action="post_release_review.closed")
    review = PostReleaseReview.objects.select_for_update().filter(release=release).first()
    if review is None:
        raise NotFound("This release has no post-release review (it was not an emergency release).")
    if release.requested_by_id is not None and actor.person_key == (PrincipalKind.USER, release.requested_by_id):
        raise Denied(
            "You requested this emergency release: another person must review it.",
            action="releases.review",
            audit_action="post_release_review.closed",
            target=release,
        )
    findings = (findings or "").strip()
    if not findings:
        raise ValidationFailed(
            "Closing a review needs findings.", errors={"findings": ["Write what the review found."]}
        )
    if review.status != ReviewStatus.OPEN:
        raise Conflict("This review is closed already.")
    review.status = ReviewStatus.CLOSED
    review.findings = findings
    review.closed_by_id = _person_id(actor)
    review.closed_at = timezone.now()
    review.save()
    audit.record(
        action="post_release_review.closed",
        actor=actor,
        target=review,
        related=release,
        before={"status": ReviewStatus.OPEN},
        after={"status": ReviewStatus.CLOSED},
        reason=findings,
    )
    return review
