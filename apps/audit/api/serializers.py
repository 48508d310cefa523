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


class CheckpointSerializer(serializers.Serializer):
    """A signed tree head: the chain head (seq, hash) and the Merkle root over events 1..seq, signed twice."""

    tree_size = serializers.IntegerField(source="seq")
    root = serializers.CharField(help_text="RFC 9162 Merkle tree root over events 1..tree_size, hex.")
    head_hash = serializers.CharField(source="hash", help_text="The chain hash of event `tree_size`.")
    time = serializers.CharField()
    key_id = serializers.CharField()
    signature = serializers.CharField(help_text="Ed25519 over `assay-audit-checkpoint:v1\\n<seq>\\n<hash>\\n<time>`.")
    note = serializers.CharField(help_text="The same tree head as a signed note (C2SP tlog-checkpoint).")


class SignedHeadSerializer(serializers.Serializer):
    checkpoint = CheckpointSerializer(allow_null=True)
    verifier_keys = serializers.ListField(child=serializers.CharField(), help_text="Signed-note verifier keys.")
    public_keys_pem = serializers.ListField(child=serializers.CharField())


class ConsistencyProofSerializer(serializers.Serializer):
    old_size = serializers.IntegerField()
    new_size = serializers.IntegerField()
    old_root = serializers.CharField()
    new_root = serializers.CharField()
    proof = serializers.ListField(child=serializers.CharField(), help_text="RFC 9162 §2.1.4 hashes, hex.")


class InclusionProofSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    leaf_index = serializers.IntegerField()
    tree_size = serializers.IntegerField()
    event_hash = serializers.CharField(help_text="The event's chain hash: the leaf's data.")
    root = serializers.CharField()
    proof = serializers.ListField(child=serializers.CharField(), help_text="RFC 9162 §2.1.3 hashes, hex.")
