"""Deployments API shapes. Serializers check shape only; the services decide what is allowed."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from apps.core.api.strict import StrictInput
from apps.deployments.choices import DeploymentKind, DeploymentState, Phase, StepOutcome, Strategy, TargetKind
from apps.deployments.models import Deployment, DeploymentStep, DeploymentTarget


def _choice(choices, what: str, **kw) -> serializers.ChoiceField:
    """A choice field whose refusal names the valid values."""
    valid = ", ".join(value for value, _ in choices)
    message = f'"{{input}}" is not a valid {what}; choose one of {valid}.'
    return serializers.ChoiceField(choices=choices, error_messages={"invalid_choice": message}, **kw)


def deployment_url(deployment: Deployment, request) -> str:
    return reverse("api:deployment-detail", kwargs={"deployment_id": deployment.public_id}, request=request)


def target_url(target: DeploymentTarget, request) -> str:
    return reverse("api:target-detail", kwargs={"target_id": target.public_id}, request=request)


class TargetOutput(serializers.ModelSerializer):
    """A target as admins see it: its settings, and only whether credentials are set (and their fingerprint)."""

    id = serializers.UUIDField(source="public_id", read_only=True)
    url = serializers.SerializerMethodField()
    kind = serializers.ChoiceField(choices=TargetKind.choices)
    environment = serializers.CharField(source="environment.name")
    settings = serializers.JSONField()
    credentials_set = serializers.BooleanField(help_text="Whether credentials are stored (never shown).")
    credentials_fingerprint = serializers.CharField(
        help_text="A short hash of the stored credentials, to compare with what you hold; empty when none."
    )
    drift = serializers.JSONField(
        help_text="What the reconciler last found running here that no approved, current release accounts for."
    )

    class Meta:
        model = DeploymentTarget
        fields = [
            "id",
            "url",
            "name",
            "kind",
            "environment",
            "settings",
            "credentials_set",
            "credentials_fingerprint",
            "enabled",
            "description",
            "drift",
            "reconciled_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, obj) -> str:
        return target_url(obj, self.context.get("request"))


class TargetInput(serializers.Serializer):
    name = serializers.SlugField(max_length=50)
    kind = _choice(TargetKind.choices, "target kind")
    environment = serializers.SlugField(max_length=50, help_text="The environment this target serves.")
    settings = serializers.DictField(required=False, default=dict, help_text="The kind's settings (docs).")
    credentials = serializers.DictField(
        required=False, default=dict, write_only=True, help_text="Encrypted at rest; never shown again."
    )
    enabled = serializers.BooleanField(required=False, default=True)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class TargetUpdateInput(StrictInput, serializers.Serializer):
    """What a PATCH may change (credentials are replaced only when given); any other field is a 400 naming it."""

    output = TargetOutput
    environment = serializers.SlugField(max_length=50, required=False)
    settings = serializers.DictField(required=False)
    credentials = serializers.DictField(required=False, write_only=True)
    enabled = serializers.BooleanField(required=False)
    description = serializers.CharField(required=False, allow_blank=True)


class StepInput(serializers.Serializer):
    weight = serializers.IntegerField(min_value=0, max_value=100, help_text="Percent of live traffic.")
    pause = serializers.IntegerField(
        min_value=0, required=False, allow_null=True, default=0, help_text="Seconds after the step; null: a person."
    )
    analysis = serializers.IntegerField(min_value=0, required=False, default=0, help_text="Seconds of traffic judged.")


class ThresholdsInput(serializers.Serializer):
    max_error_rate = serializers.FloatField(min_value=0, max_value=1, required=False)
    max_p99_ms = serializers.FloatField(min_value=0, required=False)
    max_restarts = serializers.IntegerField(min_value=0, required=False)
    min_requests = serializers.IntegerField(min_value=0, required=False)


class DeployInput(serializers.Serializer):
    target = serializers.SlugField(max_length=50, help_text="A target serving the release's environment.")
    strategy = _choice(Strategy.choices, "strategy", required=False, default=Strategy.DIRECT)
    steps = StepInput(many=True, required=False, allow_null=True, default=None, help_text="Default: the strategy's.")
    thresholds = ThresholdsInput(required=False, allow_null=True, default=None, help_text="Over the strategy's.")
    kind = _choice(DeploymentKind.choices, "deployment kind", required=False, default=DeploymentKind.ONLINE)
    schedule = serializers.CharField(required=False, allow_blank=True, default="", help_text="Cron, for batch.")
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class ReasonInput(serializers.Serializer):
    reason = serializers.CharField(allow_blank=True, help_text="Why (required: it is audited with the command).")


class StepOutput(serializers.ModelSerializer):
    outcome = serializers.ChoiceField(choices=StepOutcome.choices)
    figures = serializers.JSONField(help_text="The health figures the step was judged on (deltas over its window).")

    class Meta:
        model = DeploymentStep
        fields = ["index", "weight", "shadow", "started_at", "ready_at", "finished_at", "outcome", "figures", "message"]
        read_only_fields = fields


class DeploymentOutput(serializers.ModelSerializer):
    """A deployment: what it rolls out where, how, where it is now and the traffic last applied."""

    id = serializers.UUIDField(source="public_id", read_only=True)
    url = serializers.SerializerMethodField()
    release = serializers.UUIDField(source="release.public_id")
    model = serializers.CharField(source="model.name")
    version = serializers.IntegerField(source="version.number")
    digest = serializers.CharField(source="version.sha256")
    target = serializers.CharField(source="target.name")
    environment = serializers.CharField(source="environment.name")
    kind = serializers.ChoiceField(choices=DeploymentKind.choices)
    strategy = serializers.ChoiceField(choices=Strategy.choices)
    state = serializers.ChoiceField(choices=DeploymentState.choices)
    phase = serializers.ChoiceField(choices=Phase.choices)
    step = serializers.IntegerField(source="step_index", help_text="The current step (from 0).")
    steps = serializers.JSONField()
    thresholds = serializers.JSONField()
    traffic = serializers.JSONField(
        help_text='The split last applied: {"stable": %, "new": %, "shadow": bool}; {} none.'
    )
    converged = serializers.BooleanField(
        help_text="False while the target is still being brought to what the state asks."
    )
    stable = serializers.SerializerMethodField()

    class Meta:
        model = Deployment
        fields = [
            "id",
            "url",
            "release",
            "model",
            "version",
            "digest",
            "target",
            "environment",
            "kind",
            "schedule",
            "strategy",
            "steps",
            "thresholds",
            "state",
            "phase",
            "step",
            "traffic",
            "converged",
            "stable",
            "emergency",
            "started_by_name",
            "reason",
            "stopped_by_name",
            "stop_reason",
            "message",
            "next_check_at",
            "created_at",
            "updated_at",
            "finished_at",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, obj) -> str:
        return deployment_url(obj, self.context.get("request"))

    @extend_schema_field(
        {
            "type": "object",
            "nullable": True,
            "properties": {"id": {"type": "string", "format": "uuid"}, "version": {"type": "integer"}},
        }
    )
    def get_stable(self, obj) -> dict | None:
        """The deployment this one replaces (the stable version), if any."""
        if obj.replaces_id is None:
            return None
        return {"id": str(obj.replaces.public_id), "version": obj.replaces.version.number}


class DeploymentDetailOutput(DeploymentOutput):
    """A deployment with its step timeline (each step's traffic, times, outcome and health figures)."""

    timeline = StepOutput(many=True)

    class Meta(DeploymentOutput.Meta):
        fields = [*DeploymentOutput.Meta.fields, "timeline"]
        read_only_fields = fields
