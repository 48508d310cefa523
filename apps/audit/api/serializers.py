"""Shapes of the audit API: events as stored, and the verification result."""

from __future__ import annotations

from rest_framework import serializers

from ..exports import EXPORT_FIELDS
from ..models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    """One audit event, every field flat, as the exports carry them; an event not sealed yet has no seq."""

    seq = serializers.IntegerField(read_only=True, allow_null=True)
    prev_hash = serializers.CharField(read_only=True, allow_null=True)
    hash = serializers.CharField(read_only=True, allow_null=True)
    sealed_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = AuditEvent
        fields = (*EXPORT_FIELDS, "sealed_at")
        read_only_fields = fields


class ProblemSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    kind = serializers.CharField()
    message = serializers.CharField()


class VerifySerializer(serializers.Serializer):
    """The result of walking the chain against the signed checkpoints."""

    ok = serializers.BooleanField()
    events = serializers.IntegerField()
    head_seq = serializers.IntegerField()
    head_hash = serializers.CharField()
    checkpoints_found = serializers.IntegerField()
    checkpoints_checked = serializers.IntegerField()
    last_checkpoint_seq = serializers.IntegerField(allow_null=True)
    first_bad_seq = serializers.IntegerField(allow_null=True)
    unsealed = serializers.IntegerField()
    problems = ProblemSerializer(many=True)
    warnings = serializers.ListField(child=serializers.CharField())
