"""Webhook API shapes. Serializers check shape only; the services decide what is allowed.

A secret is never read back: only the responses to a creation and a rotation carry it.
"""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.reverse import reverse

from apps.core.api import fields as api_fields
from apps.core.api.strict import StrictInput
from apps.notifications.events import EVENT_TYPES
from apps.notifications.models import AllowedWebhookHost, Webhook, WebhookDelivery, WebhookDeliveryAttempt


class WebhookCreateInput(serializers.Serializer):
    url = serializers.CharField(max_length=2000, help_text="An https URL on a public address (or an allowed host).")
    events = serializers.ListField(
        child=api_fields.ChoiceField(choices=EVENT_TYPES), allow_empty=False, help_text="Event types to receive."
    )
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    active = serializers.BooleanField(required=False, default=True)


class WebhookUpdateInput(StrictInput, serializers.Serializer):
    """What a PATCH may change; any other field is a 400 naming it."""

    output = "WebhookOutput"
    url = serializers.CharField(max_length=2000, required=False)
    events = serializers.ListField(child=api_fields.ChoiceField(choices=EVENT_TYPES), allow_empty=False, required=False)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    active = serializers.BooleanField(required=False)


class WebhookOutput(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id")
    team = serializers.CharField(source="owner_team.name")
    created_by = serializers.CharField(source="created_by_name")
    url_self = serializers.SerializerMethodField(method_name="get_self_url")

    class Meta:
        model = Webhook
        fields = [
            "id",
            "team",
            "url",
            "description",
            "events",
            "active",
            "created_by",
            "created_at",
            "updated_at",
            "secret_rotated_at",
            "url_self",
        ]

    def get_self_url(self, webhook) -> str:
        return reverse("api:webhook-detail", args=[webhook.public_id], request=self.context.get("request"))


class WebhookWithSecretOutput(WebhookOutput):
    """A webhook as created (or with its secret rotated): the only time its secret is shown."""

    secret = serializers.SerializerMethodField(help_text="The signing secret, shown this once: store it now.")

    class Meta(WebhookOutput.Meta):
        fields = [*WebhookOutput.Meta.fields, "secret"]

    def get_secret(self, webhook) -> str:
        return self.context["secret"]


class AttemptOutput(serializers.ModelSerializer):
    class Meta:
        model = WebhookDeliveryAttempt
        fields = [
            "number",
            "started_at",
            "duration_ms",
            "address",
            "status_code",
            "response_excerpt",
            "error",
            "retry_in_seconds",
        ]


class DeliveryOutput(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id")
    webhook = serializers.UUIDField(source="webhook.public_id")
    attempts = AttemptOutput(many=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "webhook",
            "event",
            "state",
            "attempt_count",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "created_at",
            "finished_at",
            "attempts",
        ]


class AllowedHostInput(serializers.Serializer):
    host = serializers.CharField(max_length=253, help_text="A host name or IP address, exactly as in webhook URLs.")
    allow_http = serializers.BooleanField(required=False, default=False)
    note = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class AllowedHostOutput(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by_name")

    class Meta:
        model = AllowedWebhookHost
        fields = ["id", "host", "allow_http", "note", "created_by", "created_at"]
