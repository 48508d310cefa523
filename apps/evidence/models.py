"""Evidence runs: one computation of a kind of evidence (bias, PII scan, ...) on a version or a dataset."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from apps.accounts.models import ServiceAccount, Team, User
from apps.core.models import TimestampedModel
from apps.registry.models import Dataset, ModelVersion, RegisteredModel

from .choices import EvidenceKind, RunStatus


class EvidenceRun(TimestampedModel):
    """One evidence computation, its inputs' digests and, once finished, its summary or the reason it failed.

    The subject is ``version`` when set (its evidence, computed on ``dataset``: the version's
    evaluation dataset unless the request named another), else ``dataset``. ``owner_team`` and
    ``model`` copy the subject's scope when the run is requested, so access is decided like the
    subject's. Progress and its message live on ``job``. Runs with the same ``reuse_key`` (kind,
    input digests, canonical parameters) compute the same thing.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=32, choices=EvidenceKind.choices)
    version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="evidence_runs"
    )
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.PROTECT, related_name="evidence_runs")
    owner_team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="+")
    model = models.ForeignKey(RegisteredModel, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    parameters = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    summary = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, help_text="Why the run failed, in words (never a traceback).")
    engine_versions = models.JSONField(default=dict, blank=True)
    input_digests = models.JSONField(default=dict, blank=True)
    reuse_key = models.CharField(max_length=64, db_index=True)
    requested_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    requested_by_service_account = models.ForeignKey(
        ServiceAccount, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    RBAC_PATHS = {"team": "owner_team_id", "model": "model_id"}

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(version__isnull=False) | Q(dataset__isnull=False), name="evidence_run_has_subject"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} evidence {self.public_id}"

    def audit_ref(self) -> tuple[str, str, str]:
        return ("evidence_run", str(self.public_id), f"{self.kind} on {self.subject_label}")

    def rbac_scope(self) -> tuple[int | None, int | None]:
        return (self.owner_team_id, self.model_id)

    @property
    def subject_label(self) -> str:
        if self.version_id:
            return f"{self.version.model.name} v{self.version.number}"
        return f"dataset {self.dataset.name}"


class EvidenceFile(TimestampedModel):
    """A result file of a run (a table, the SHAP values, a scrubbed dataset's copy) kept in artifact storage.

    Written by the worker when the run succeeds; ``key`` is a storage key the storage module
    generated, never a name a user sent. ``name`` is the download's file name.
    """

    run = models.ForeignKey(EvidenceRun, on_delete=models.PROTECT, related_name="files")
    name = models.CharField(max_length=200)
    title = models.CharField(max_length=200, blank=True)
    content_type = models.CharField(max_length=100)
    key = models.CharField(max_length=1024)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)

    class Meta:
        ordering = ["run_id", "name"]
        constraints = [models.UniqueConstraint(fields=["run", "name"], name="evidence_file_unique_name")]

    def __str__(self) -> str:
        return f"{self.name} of {self.run}"

    def audit_ref(self) -> tuple[str, str, str]:
        return ("evidence_file", str(self.pk), self.name)


class FindingVerdict(models.TextChoices):
    FALSE_POSITIVE = "false_positive", "False positive"
    CONFIRMED = "confirmed", "Confirmed"


class FindingReview(TimestampedModel):
    """A reviewer's verdict on one finding of a PII scan (``<column>:<ENTITY_TYPE>``), with the reason.

    The latest review of a finding counts; earlier ones stay as its history. A false positive is
    counted apart from the unresolved findings, which is what policies read.
    """

    run = models.ForeignKey(EvidenceRun, on_delete=models.PROTECT, related_name="reviews")
    finding = models.CharField(max_length=300)
    verdict = models.CharField(max_length=32, choices=FindingVerdict.choices)
    reason = models.TextField()
    reviewer = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reviewer_service_account = models.ForeignKey(
        ServiceAccount, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["run_id", "finding", "-created_at", "-id"]
        indexes = [models.Index(fields=["run", "finding"], name="finding_review_idx")]

    def __str__(self) -> str:
        return f"{self.finding}: {self.verdict}"

    @property
    def reviewer_name(self) -> str:
        """Who gave the verdict, as pages show it: the person's name, or the service account's."""
        if self.reviewer_service_account_id:
            return f"service account {self.reviewer_service_account.name}"
        if self.reviewer_id:
            return self.reviewer.get_full_name() or self.reviewer.username
        return "a former user"

    def audit_ref(self) -> tuple[str, str, str]:
        return ("finding_review", str(self.pk), self.finding)


class EvidenceChunk(TimestampedModel):
    """One slice of a large run's dataset (rows ``row_start`` to ``row_stop``), computed by its own job.

    Several workers compute a run's chunks in parallel; each stores its mergeable partial result
    (bias: confusion counts; PII: counts, scores and masked examples) here, never in Celery's
    result backend. Whichever chunk finishes last merges them all under the run's row lock, so
    the merge happens exactly once. A killed worker's chunk is re-queued by the job sweeper and
    the chunks already done are kept: the run resumes where it stopped.
    """

    run = models.ForeignKey(EvidenceRun, on_delete=models.PROTECT, related_name="chunks")
    index = models.PositiveIntegerField()
    row_start = models.BigIntegerField()
    row_stop = models.BigIntegerField()
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    partial = models.JSONField(null=True, blank=True)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run_id", "index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="evidence_chunk_unique_index")]

    def __str__(self) -> str:
        return f"chunk {self.index} of {self.run}"

    def audit_ref(self) -> tuple[str, str, str]:
        return ("evidence_chunk", str(self.pk), f"chunk {self.index} of {self.run.public_id}")
