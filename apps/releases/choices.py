from django.db import models


class ReleaseStatus(models.TextChoices):
    """A release request's states; only ``apps.releases.services`` moves a request between them.

    ``deploying``, ``deployed`` and ``rolled_back`` belong to the deployments app (later): the
    column is wide enough for them and nothing here assumes the list is closed.
    """

    PENDING_EVIDENCE = "pending_evidence", "Pending evidence"
    PENDING_APPROVAL = "pending_approval", "Pending approval"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"


# Waiting for evidence or people: these expire, re-evaluate and may be cancelled.
OPEN = (ReleaseStatus.PENDING_EVIDENCE, ReleaseStatus.PENDING_APPROVAL)
# States whose decision is re-evaluated when evidence or policies change (approved: not yet deployed).
LIVE = (*OPEN, ReleaseStatus.APPROVED)
FINAL = (ReleaseStatus.REJECTED, ReleaseStatus.EXPIRED, ReleaseStatus.CANCELLED)


class ApprovalDecision(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"


class ReviewStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"
