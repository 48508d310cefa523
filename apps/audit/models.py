"""The audit trail: one append-only, hash-chained table.

Writers insert events inside their own transaction with ``seq`` and ``hash``
empty; the sealer (``apps.audit.chain.seal_pending``) then assigns the gapless
sequence number, the previous hash and this event's hash, in one ordered pass,
shortly after commit. Database triggers refuse every UPDATE except that one
sealing step on an unsealed row, every DELETE, and TRUNCATE on PostgreSQL.
"""

import uuid

from django.db import models

from .choices import Outcome, Source


class AuditEvent(models.Model):
    """One thing that happened: who, from where, did what to which object, with what outcome."""

    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    seq = models.BigIntegerField(null=True, unique=True, editable=False)
    occurred_at = models.DateTimeField(db_index=True)
    actor_type = models.CharField(max_length=32)
    actor_id = models.CharField(max_length=64, blank=True)
    actor_name = models.CharField(max_length=255, blank=True)
    token_id = models.CharField(max_length=64, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    client_ip = models.CharField(max_length=64, blank=True)
    request_id = models.CharField(max_length=128, blank=True, db_index=True)
    action = models.CharField(max_length=128, db_index=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.SUCCESS)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_name = models.CharField(max_length=255, blank=True)
    related_type = models.CharField(max_length=64, blank=True)
    related_id = models.CharField(max_length=64, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    artifact_sha256 = models.CharField(max_length=64, blank=True)
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64, blank=True)
    sealed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "audit_event"
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["target_type", "target_id"], name="audit_target_idx"),
            models.Index(fields=["actor_type", "actor_id"], name="audit_actor_idx"),
            # The sealer's work list: tiny (only events not yet sealed), already in id order. Without it,
            # finding them walks every old row version a busy table's seq index still points to.
            models.Index(fields=["id"], condition=models.Q(seq__isnull=True), name="audit_unsealed_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq or '?'} {self.action} {self.outcome} by {self.actor_type}:{self.actor_name}"
