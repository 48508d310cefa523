"""Evidence API shapes. Serializers check shape only; the services decide what is allowed."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from apps.evidence.choices import EvidenceKind, RunStatus
from apps.evidence.models import EvidenceRun


class EvidenceRequestInput(serializers.Serializer):
    kind = serializers.CharField(
        max_length=32, help_text=f"One of {', '.join(EvidenceKind.values)} (only bias is available yet)."
    )
    parameters = serializers.JSONField(
        required=False,
        default=dict,
        help_text=(
            "For bias: sensitive_columns (default: the columns with role sensitive), label_column (default: the "
            "role label column), prediction_column (default: the role prediction column; with none, a version's "
            "model is scored on the dataset's feature columns), positive_label "
            "(optional), reference_groups (optional, {column: group label})."
        ),
    )
    rerun = serializers.BooleanField(
        required=False, default=False, help_text="Compute again even when an equal run exists."
    )


class VersionEvidenceRequestInput(EvidenceRequestInput):
    dataset_id = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, help_text="Another dataset than the version's evaluation dataset."
    )


class SubjectOutput(serializers.Serializer):
    """What the evidence is about: a model version (evaluated on ``dataset``) or a dataset."""

    type = serializers.ChoiceField(choices=["model_version", "dataset"])
    model = serializers.CharField(allow_null=True)
    version = serializers.IntegerField(allow_null=True)
    dataset = serializers.IntegerField()
    version_url = serializers.CharField(allow_null=True)
    dataset_url = serializers.CharField()


class RequesterOutput(serializers.Serializer):
    user = serializers.CharField(allow_null=True)
    service_account = serializers.CharField(allow_null=True)


class EvidenceRunOutput(serializers.Serializer):
    """An evidence run: status and progress while it works, then its summary (or why it failed)."""

    id = serializers.UUIDField(source="public_id")
    kind = serializers.ChoiceField(choices=EvidenceKind.choices)
    status = serializers.ChoiceField(choices=RunStatus.choices)
    progress = serializers.SerializerMethodField()
    message = serializers.SerializerMethodField()
    subject = serializers.SerializerMethodField()
    parameters = serializers.JSONField()
    summary = serializers.JSONField(
        allow_null=True,
        help_text="The kind's versioned summary once succeeded: assay.bias/v1 for bias (see the README).",
    )
    error = serializers.CharField(help_text="Why the run failed, in words.")
    engine_versions = serializers.DictField(child=serializers.CharField())
    input_digests = serializers.DictField(child=serializers.CharField(allow_blank=True), help_text="SHA-256 by input.")
    requested_by = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    url = serializers.SerializerMethodField()

    def get_progress(self, run: EvidenceRun) -> int:
        if run.status == RunStatus.SUCCEEDED:
            return 100
        return run.job.progress if run.job_id else 0

    def get_message(self, run: EvidenceRun) -> str:
        if run.status == RunStatus.FAILED:
            return run.error
        return run.job.message if run.job_id else ""

    @extend_schema_field(SubjectOutput)
    def get_subject(self, run: EvidenceRun) -> dict:
        request = self.context.get("request")
        version = run.version if run.version_id else None
        return {
            "type": "model_version" if version else "dataset",
            "model": version.model.name if version else None,
            "version": version.number if version else None,
            "dataset": run.dataset_id,
            "version_url": reverse(
                "api:registry-version-detail",
                kwargs={"name": version.model.name, "number": version.number},
                request=request,
            )
            if version
            else None,
            "dataset_url": reverse(
                "api:registry-dataset-detail", kwargs={"dataset_id": run.dataset_id}, request=request
            ),
        }

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
