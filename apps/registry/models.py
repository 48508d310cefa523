"""Registered models, their versions, and datasets."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from apps.accounts.models import ServiceAccount, Team, User
from apps.core.models import TimestampedModel
from apps.core.principals import Principal, PrincipalKind

from .choices import ArtifactFormat, DatasetFormat, DatasetStatus, FactsChangeStatus, RiskTier, VersionStatus


class RegisteredModel(TimestampedModel):
    """A model under governance. Its name is its key in URLs and never changes."""

    name = models.SlugField(max_length=100, unique=True)
    owner_team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="models")
    description = models.TextField(blank=True)
    intended_use = models.TextField(blank=True)
    limitations = models.TextField(blank=True)
    risk_tier = models.CharField(max_length=16, choices=RiskTier.choices, default=RiskTier.LIMITED)
    data_categories = models.JSONField(default=list, blank=True)
    jurisdictions = models.JSONField(default=list, blank=True)
    default_evidence = models.JSONField(
        default=list, blank=True, help_text="Evidence kinds requested for each version once it is verified."
    )
    # Facts the policy packs read (apps/policies/packs/README.md).
    automated_decisions = models.BooleanField(
        default=False,
        help_text="Makes decisions about people with legal or similarly significant effect (GDPR Art. 22).",
    )
    human_review_path = models.TextField(
        blank=True, help_text="How a person can obtain human review of an automated decision (GDPR Art. 22(3))."
    )
    dpia_reference = models.CharField(
        max_length=300, blank=True, help_text="Reference of the data protection impact assessment (GDPR Art. 35)."
    )
    human_oversight = models.TextField(
        blank=True, help_text="Who oversees the model in use and how they can intervene (EU AI Act Art. 14)."
    )
    minimisation_justification = models.TextField(
        blank=True, help_text="Why direct identifiers are needed among the training features (GDPR Art. 5(1)(c))."
    )
    fairness_thresholds = models.JSONField(
        default=dict,
        blank=True,
        help_text='Largest allowed differences, e.g. {"demographic_parity_difference": 0.1, '
        '"equalized_odds_difference": 0.1}.',
    )
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The last version number handed out (see services.versions._next_number); never decreases.
    last_version_number = models.PositiveIntegerField(default=0, editable=False)

    RBAC_PATHS = {"team": "owner_team_id", "model": "id"}

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def audit_ref(self) -> tuple[str, str, str]:
        return ("model", str(self.pk), self.name)

    def rbac_scope(self) -> tuple[int | None, int | None]:
        return (self.owner_team_id, self.pk)


class Dataset(TimestampedModel):
    """A tabular dataset (CSV, Parquet, JSON Lines) with its digest and a role per column."""

    name = models.CharField(max_length=200)
    owner_team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="datasets")
    description = models.TextField(blank=True)
    uri = models.CharField(max_length=1024, help_text="Storage key (uploads) or s3:// URI (references)")
    is_reference = models.BooleanField(default=False)
    format = models.CharField(max_length=16, choices=DatasetFormat.choices)
    status = models.CharField(max_length=32, choices=DatasetStatus.choices, default=DatasetStatus.PENDING_VERIFICATION)
    status_reason = models.TextField(blank=True)
    sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    size = models.BigIntegerField(null=True, blank=True)
    row_count = models.BigIntegerField(null=True, blank=True)
    schema = models.JSONField(default=list, blank=True, help_text='[{"name", "type", "role"}]')
    source = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="derived")
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by_service_account = models.ForeignKey(
        ServiceAccount, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    verification_job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    RBAC_PATHS = {"team": "owner_team_id", "model": None}

    class Meta:
        ordering = ["-created_at"]
        # The dataset list's order: its first page reads 50 index entries instead of sorting the table.
        indexes = [models.Index(fields=["created_at"], name="registry_dataset_created_idx")]

    def __str__(self) -> str:
        return self.name

    def audit_ref(self) -> tuple[str, str, str]:
        return ("dataset", str(self.pk), self.name)

    def rbac_scope(self) -> tuple[int | None, int | None]:
        return (self.owner_team_id, None)


class ModelVersion(TimestampedModel):
    """One artifact of a model, numbered per model; its SHA-256 binds evidence and approvals."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=32, choices=VersionStatus.choices, default=VersionStatus.PENDING_VERIFICATION)
    status_reason = models.TextField(blank=True)
    format = models.CharField(max_length=32, choices=ArtifactFormat.choices)
    artifact_uri = models.CharField(max_length=1024, blank=True)
    artifact_is_reference = models.BooleanField(default=False)
    sha256 = models.CharField(max_length=64, blank=True)
    size = models.BigIntegerField(null=True, blank=True)
    description = models.TextField(blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    # lineage
    source_repository = models.CharField(max_length=500, blank=True)
    source_commit = models.CharField(max_length=64, blank=True)
    ci_run_url = models.CharField(max_length=500, blank=True)
    training_datasets = models.ManyToManyField(Dataset, blank=True, related_name="trained_versions")
    evaluation_dataset = models.ForeignKey(
        Dataset, null=True, blank=True, on_delete=models.PROTECT, related_name="evaluated_versions"
    )
    # model card
    model_card = models.JSONField(default=dict, blank=True)
    # the author: the person accountable (a service account's owner) and the service account, if any
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by_service_account = models.ForeignKey(
        ServiceAccount, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    verification_job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    RBAC_PATHS = {"team": "model__owner_team_id", "model": "model_id"}

    class Meta:
        ordering = ["model_id", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["model", "number"], name="uniq_version_number"),
            # One live version per artifact: an invalid version (whose bytes are gone) does not block a retry.
            models.UniqueConstraint(
                fields=["model", "sha256"],
                condition=~Q(sha256="") & ~Q(status="invalid"),
                name="uniq_version_artifact_digest",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model.name} v{self.number}"

    def audit_ref(self) -> tuple[str, str, str]:
        return ("model_version", str(self.pk), f"{self.model.name} v{self.number}")

    def rbac_scope(self) -> tuple[int | None, int | None]:
        return (self.model.owner_team_id, self.model_id)


class FactsChange(TimestampedModel):
    """A proposed change that loosens the facts a model's gate reads, waiting for a compliance officer.

    ``changes`` is ``{field: {"before": value, "after": value}}``, cleaned as the model stores them.
    Approval applies ``after`` only while the model still holds every ``before``. The proposer is the
    accountable person (a service account's owner) and never decides on it (four eyes). At most one
    pending change per model. Written only by ``apps.registry.services.facts``.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="facts_changes")
    changes = models.JSONField()
    reason = models.TextField()
    status = models.CharField(
        max_length=16, choices=FactsChangeStatus.choices, default=FactsChangeStatus.PENDING, db_index=True
    )
    proposed_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    proposed_by_service_account = models.ForeignKey(
        ServiceAccount, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    proposed_by_name = models.CharField(max_length=255, help_text="The proposer as named when proposing.")
    decided_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_by_name = models.CharField(max_length=255, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)

    RBAC_PATHS = {"team": "model__owner_team_id", "model": "model_id"}

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["model"],
                condition=Q(status=FactsChangeStatus.PENDING),
                name="one_pending_facts_change_per_model",
            ),
        ]

    def __str__(self) -> str:
        return f"facts change of {self.model.name} ({self.status})"

    def audit_ref(self) -> tuple[str, str, str]:
        return ("facts_change", str(self.public_id), self.model.name)

    def rbac_scope(self) -> tuple[int | None, int | None]:
        return (self.model.owner_team_id, self.model_id)

    @property
    def fields(self) -> list[str]:
        return list(self.changes)

    def proposer(self) -> Principal | None:
        """The proposer as a principal, for four-eyes checks (``apps.core.principals.same_person``)."""
        if self.proposed_by_id is not None:
            return Principal(kind=PrincipalKind.USER, id=self.proposed_by_id, name=self.proposed_by_name)
        if self.proposed_by_service_account_id is not None:
            return Principal(
                kind=PrincipalKind.SERVICE_ACCOUNT, id=self.proposed_by_service_account_id, name=self.proposed_by_name
            )
        return None
