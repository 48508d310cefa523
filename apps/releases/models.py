"""Release requests, their approvals, and the reviews after a break-glass release (environments: apps.rbac)."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from apps.accounts.models import ServiceAccount, Team, User
from apps.core.models import TimestampedModel
from apps.rbac.models import Environment
from apps.registry.models import ModelVersion, RegisteredModel

from .choices import LIVE, ApprovalDecision, ReleaseStatus, ReviewStatus


class ReleaseRequest(TimestampedModel):
    """A request to release one version into one environment, with the policy decision it was judged on.

    ``decision`` is the policy decision (``PolicyDecision.as_dict()``) last made, stamped with its
    ``evaluated_at`` (also a column): the packs and their versions, the evidence, artifact and
    model-facts digests it saw. Approvals bind to ``binding_digest``; when a re-evaluation yields
    another digest the approvals are voided and the request returns to pending. Reads never
    re-judge: only the re-evaluation service, the approval service (under the row lock) and the
    periodic expiry task write here. ``owner_team`` and ``model`` copy the version's scope, so
    access is decided by team, model or environment (``rbac_scope``). At most one live request
    (pending or approved) per version and environment.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="release_requests")
    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="+")
    owner_team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="+")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="release_requests")
    status = models.CharField(max_length=24, choices=ReleaseStatus.choices, db_index=True)
    justification = models.TextField()
    change_reference = models.CharField(max_length=200, blank=True)
    emergency = models.BooleanField(default=False)
    requested_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    requested_by_service_account = models.ForeignKey(
        ServiceAccount, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decision = models.JSONField(default=dict)
    binding_digest = models.CharField(max_length=64)
    evaluated_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Open requests expire at this time.")
    approved_at = models.DateTimeField(null=True, blank=True)
    revalidate_at = models.DateTimeField(
        null=True, blank=True, help_text="Production approvals must be renewed after this time."
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_reason = models.TextField(blank=True)

    RBAC_PATHS = {"team": "owner_team_id", "model": "model_id", "environment": "environment_id"}

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # At most one live request (pending evidence, pending approval or approved) per version and
            # environment: re-evaluation moves a request between these states and must never collide.
            models.UniqueConstraint(
                fields=["version", "environment"],
                condition=Q(status__in=[s.value for s in LIVE]),
                name="one_live_release_per_version_environment",
            ),
        ]

    def __str__(self) -> str:
        return f"release of {self.model.name} v{self.version.number} to {self.environment.name}"

    def audit_ref(self) -> tuple[str, str, str]:
        return ("release", str(self.public_id), f"{self.model.name} v{self.version.number} to {self.environment.name}")

    def rbac_scope(self) -> tuple[int | None, int | None, int | None]:
        return (self.owner_team_id, self.model_id, self.environment_id)


class Approval(models.Model):
    """One person's decision on a release request, bound to the decision digest it was given on.

    ``approver`` is the accountable person (a service account's owner); ``roles`` are the roles the
    approver held on the release when deciding, which fill the required approval slots. A voided
    approval (the decision changed after it) is kept and no longer counts. One live approval per person.
    """

    release = models.ForeignKey(ReleaseRequest, on_delete=models.CASCADE, related_name="approvals")
    approver = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    approver_service_account = models.ForeignKey(
        ServiceAccount, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decision = models.CharField(max_length=16, choices=ApprovalDecision.choices)
    comment = models.TextField(blank=True)
    roles = models.JSONField(default=list)
    binding_digest = models.CharField(max_length=64)
    revalidate_at = models.DateTimeField(null=True, blank=True)
    void = models.BooleanField(default=False)
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # The database's own guard for "one person counts once", whatever races the service loses.
            models.UniqueConstraint(
                fields=["release", "approver"], condition=Q(void=False), name="one_live_approval_per_person"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.decision} by {self.approver} on {self.release_id}"

    def audit_ref(self) -> tuple[str, str, str]:
        return ("approval", str(self.pk), f"{self.decision} by {self.approver}")


class PostReleaseReview(TimestampedModel):
    """The review a break-glass release opens; a compliance officer closes it with findings."""

    release = models.OneToOneField(ReleaseRequest, on_delete=models.CASCADE, related_name="review")
    status = models.CharField(max_length=16, choices=ReviewStatus.choices, default=ReviewStatus.OPEN, db_index=True)
    findings = models.TextField(blank=True)
    closed_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    closed_at = models.DateTimeField(null=True, blank=True)

    RBAC_PATHS = {
        "team": "release__owner_team_id",
        "model": "release__model_id",
        "environment": "release__environment_id",
    }

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"post-release review of {self.release_id}"

    def audit_ref(self) -> tuple[str, str, str]:
        return ("post_release_review", str(self.pk), f"review of release {self.release.public_id}")

    def rbac_scope(self) -> tuple[int | None, int | None, int | None]:
        return self.release.rbac_scope()


class GateDecision(models.Model):
    """The policy decision the gate answers from, for one version in one environment.

    ``decision`` is ``PolicyDecision.as_dict()`` stamped with ``evaluated_at``, made on the facts,
    evidence and packs of that time and the release request the gate would judge (its change
    reference, requester, emergency flag and approvals). Written only by
    ``apps.releases.gate_decisions.gate_decisions_refresh``, which the reactions to every event that
    can change a decision run (new evidence, model facts, policies, environments, release states);
    the gate and the version page only read it, so a gate call never evaluates a policy.
    """

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="gate_decisions")
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="gate_decisions")
    decision = models.JSONField(default=dict)
    binding_digest = models.CharField(max_length=64)
    evaluated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "environment"], name="one_gate_decision_per_version_environment")
        ]

    def __str__(self) -> str:
        return f"gate decision of version {self.version_id} in environment {self.environment_id}"
