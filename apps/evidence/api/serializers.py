"""Evidence API shapes. Serializers check shape only; the services decide what is allowed."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from apps.core.api import fields as api_fields
from apps.core.models import MAX_ID
from apps.evidence.choices import EvidenceKind, RunStatus
from apps.evidence.models import EvidenceRun
from apps.evidence.runs import run_progress
from apps.evidence.selectors import review_state
from apps.evidence.verdicts import FAIRNESS_METRICS, bias_verdicts, run_outcome
from apps.rbac import services as rbac

from .schemas import SUMMARY


class EvidenceRequestInput(serializers.Serializer):
    kind = serializers.CharField(max_length=32, help_text=f"One of {', '.join(EvidenceKind.values)}.")
    parameters = serializers.JSONField(
        required=False,
        default=dict,
        help_text=(
            "For bias: sensitive_columns (default: the columns with role sensitive), label_column (default: the "
            "role label column), prediction_column (default: the role prediction column; with none, a version's "
            "model is scored on the dataset's feature columns), positive_label "
            "(optional), reference_groups (optional, {column: group label}). "
            "For pii_scan: columns (default: all), entities (default: all supported), score_threshold (0.5), "
            "language (en), allow_list (values never reported), sample_size (1000 values per structured column), "
            "scrub (false; true writes a scrubbed copy as a new dataset), operators ({ENTITY_TYPE: "
            "redact|mask|replace|hash|keep}, default replace). "
            "For explainability (versions only): sample_size (200), background_size (100), max_evals (permutation "
            "budget per row), rows (row numbers to explain locally), local_count (5), seed (0)."
        ),
    )
    rerun = serializers.BooleanField(
        required=False, default=False, help_text="Compute again even when an equal run exists."
    )


class VersionEvidenceRequestInput(EvidenceRequestInput):
    dataset_id = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=MAX_ID,
        help_text="Another dataset than the version's evaluation dataset.",
    )


class SubjectOutput(serializers.Serializer):
    """What the evidence is about: a model version (evaluated on ``dataset``) or a dataset."""

    type = api_fields.ChoiceField(choices=["model_version", "dataset"])
    model = serializers.CharField(allow_null=True)
    version = serializers.IntegerField(allow_null=True)
    dataset = serializers.IntegerField(allow_null=True, help_text="Null when the dataset is outside your scope.")
    version_url = serializers.CharField(allow_null=True)
    dataset_url = serializers.CharField(allow_null=True)


class RequesterOutput(serializers.Serializer):
    user = serializers.CharField(allow_null=True)
    service_account = serializers.CharField(allow_null=True)


@extend_schema_field(SUMMARY)
class SummaryField(serializers.JSONField):
    """A run's summary: assay.bias/v1, assay.explain/v1 or assay.pii/v1, described in the OpenAPI schema."""


class EvidenceFileOutput(serializers.Serializer):
    """A result file of a run; ``url`` downloads it (audited)."""

    name = serializers.CharField()
    title = serializers.CharField()
    content_type = serializers.CharField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()
    url = serializers.SerializerMethodField()

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, file) -> str:
        run_id = self.context["run_public_id"]
        return reverse(
            "api:evidence-file-download",
            kwargs={"run_id": run_id, "name": file.name},
            request=self.context.get("request"),
        )


class FindingReviewOutput(serializers.Serializer):
    """A reviewer's verdict on one finding."""

    finding = serializers.CharField()
    verdict = serializers.CharField()
    reason = serializers.CharField()
    reviewer = serializers.SerializerMethodField()
    reviewer_name = serializers.CharField(help_text="The reviewer's name as pages show it.")
    created_at = serializers.DateTimeField()

    def get_reviewer(self, review) -> str | None:
        if review.reviewer_service_account_id:
            return review.reviewer_service_account.name
        return review.reviewer.username if review.reviewer_id else None


class ReviewStateOutput(serializers.Serializer):
    """A PII scan's findings by review: false positives apart; ``unresolved`` is what policies read."""

    unresolved = serializers.ListField(child=serializers.CharField())
    false_positives = serializers.ListField(child=serializers.CharField())
    confirmed = serializers.ListField(child=serializers.CharField())
    unresolved_count = serializers.IntegerField()


class FindingReviewInput(serializers.Serializer):
    finding = serializers.CharField(max_length=300, help_text="The finding's id from the summary: <column>:<ENTITY>.")
    verdict = api_fields.ChoiceField(
        choices=["false_positive", "confirmed"],
        help_text="Mandatory, no default: false_positive or confirmed.",
        error_messages={"required": "Choose a verdict: false_positive or confirmed (there is no default)."},
    )
    reason = serializers.CharField(max_length=2000, help_text="Why (mandatory).")


class VerdictOutput(serializers.Serializer):
    """A bias report's verdict on one sensitive attribute (or the intersection) for one fairness metric."""

    attribute = serializers.CharField(help_text="A sensitive column, or the intersection: 'sex × age_band'.")
    columns = serializers.ListField(child=serializers.CharField())
    intersection = serializers.BooleanField()
    metric = api_fields.ChoiceField(choices=[m for m, _ in FAIRNESS_METRICS])
    measured = serializers.FloatField(allow_null=True)
    threshold = serializers.FloatField(help_text="The model's fairness threshold for the metric (0.1 when unset).")
    threshold_is_default = serializers.BooleanField()
    result = api_fields.ChoiceField(choices=["pass", "fail"])
    text = serializers.CharField(help_text="E.g. 'demographic parity difference 0.068 ≤ 0.1'.")


class OutcomeOutput(serializers.Serializer):
    """A succeeded run's verdict in a few words, as its badge shows it."""

    text = serializers.CharField(help_text="E.g. 'PII: 3 unresolved', 'Bias: 1 of 6 checks fail'.")
    state = api_fields.ChoiceField(choices=["ok", "warning", "failed"])


class EvidenceRunOutput(serializers.Serializer):
    """An evidence run: status and progress while it works, then its summary (or why it failed)."""

    id = serializers.UUIDField(source="public_id")
    kind = api_fields.ChoiceField(choices=EvidenceKind.choices)
    status = api_fields.ChoiceField(choices=RunStatus.choices)
    progress = serializers.SerializerMethodField()
    message = serializers.SerializerMethodField()
    subject = serializers.SerializerMethodField()
    parameters = serializers.JSONField()
    summary = SummaryField(
        allow_null=True,
        help_text=(
            "The kind's versioned summary once succeeded: assay.bias/v1, assay.pii/v1 or assay.explain/v1 "
            "(schemas in docs/evidence-schemas.md)."
        ),
    )
    error = serializers.CharField(help_text="Why the run failed, in words.")
    engine_versions = serializers.DictField(child=serializers.CharField())
    input_digests = serializers.DictField(child=serializers.CharField(allow_blank=True), help_text="SHA-256 by input.")
    files = serializers.SerializerMethodField()
    reviews = serializers.SerializerMethodField()
    review_state = serializers.SerializerMethodField()
    verdicts = serializers.SerializerMethodField()
    outcome = serializers.SerializerMethodField()
    requested_by = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    url = serializers.SerializerMethodField()

    def get_progress(self, run: EvidenceRun) -> int:
        if run.status == RunStatus.SUCCEEDED:
            return 100
        return run_progress(run)[0]

    def get_message(self, run: EvidenceRun) -> str:
        if run.status == RunStatus.FAILED:
            return run.error
        return run_progress(run)[1]

    def to_representation(self, run: EvidenceRun) -> dict:
        data = super().to_representation(run)
        if run.dataset_id is not None and data["subject"]["dataset"] is None and "dataset" in data["input_digests"]:
            data["input_digests"] = {**data["input_digests"], "dataset": "hidden"}
        return data

    @extend_schema_field(SubjectOutput)
    def get_subject(self, run: EvidenceRun) -> dict:
        """The run's version and dataset; a dataset outside the reader's scope (a version's run on
        another team's data) is null, and so is its URL."""
        request = self.context.get("request")
        version = run.version if run.version_id else None
        hidden = run.dataset_id is not None and not rbac.allows(
            getattr(request, "principal", None), "registry.view", run.dataset
        )
        shown = run.dataset_id if run.dataset_id is not None and not hidden else None
        return {
            "type": "model_version" if version else "dataset",
            "model": version.model.name if version else None,
            "version": version.number if version else None,
            "dataset": shown,
            "version_url": reverse(
                "api:registry-version-detail",
                kwargs={"name": version.model.name, "number": version.number},
                request=request,
            )
            if version
            else None,
            "dataset_url": reverse("api:registry-dataset-detail", kwargs={"dataset_id": shown}, request=request)
            if shown is not None
            else None,
        }

    @extend_schema_field(EvidenceFileOutput(many=True))
    def get_files(self, run: EvidenceRun) -> list:
        context = {**self.context, "run_public_id": run.public_id}
        return EvidenceFileOutput(run.files.all(), many=True, context=context).data

    @extend_schema_field(FindingReviewOutput(many=True))
    def get_reviews(self, run: EvidenceRun) -> list:
        return FindingReviewOutput(run.reviews.all(), many=True).data

    @extend_schema_field(ReviewStateOutput(allow_null=True))
    def get_review_state(self, run: EvidenceRun) -> dict | None:
        return review_state(run)

    @extend_schema_field(VerdictOutput(many=True, allow_null=True))
    def get_verdicts(self, run: EvidenceRun) -> list | None:
        """A succeeded bias report's pass/fail per attribute, intersection and metric; null for other runs."""
        if run.kind != EvidenceKind.BIAS or run.status != RunStatus.SUCCEEDED or not run.summary:
            return None
        return bias_verdicts(run.summary, run.version.model if run.version_id else None)

    @extend_schema_field(OutcomeOutput(allow_null=True))
    def get_outcome(self, run: EvidenceRun) -> dict | None:
        outcome = run_outcome(run)
        return {"text": outcome.text, "state": outcome.state} if outcome else None

    @extend_schema_field(RequesterOutput)
    def get_requested_by(self, run: EvidenceRun) -> dict:
        return {
            "user": run.requested_by.username if run.requested_by_id else None,
            "service_account": run.requested_by_service_account.name if run.requested_by_service_account_id else None,
        }

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, run: EvidenceRun) -> str:
        return evidence_run_url(run, request=self.context.get("request"))


class EvidenceRequestOutput(EvidenceRunOutput):
    """The run a request created (202), or the equal run it reused (200, ``reused: true``)."""

    reused = serializers.BooleanField()


def evidence_run_url(run: EvidenceRun, request=None) -> str:
    return reverse("api:evidence-run-detail", kwargs={"run_id": run.public_id}, request=request)
