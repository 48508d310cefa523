"""The audit trail: write-once events, an insert-only chain of seals, and the sealer's work list.

Writers insert events (``audit_event``) inside their own transaction; a database
trigger puts each new event's id on the sealer's work list (``audit_pending``).
The sealer (``apps.audit.chain.seal_pending``) then gives committed events, in id
order, the gapless sequence number, the previous hash and their hash by INSERTING
one ``audit_seal`` row each and taking them off the work list. No event row is
ever updated, so sealing leaves no dead row version in the events table.

Database triggers refuse every UPDATE and DELETE of an event or a seal, TRUNCATE on
PostgreSQL, any change to a work-list entry but its removal, and its removal before
its event has a seal (``apps.audit.triggers``).
"""

import uuid

from django.db import models
from django.db.models import F

from .choices import Outcome, Source

# The chain fields an event reads from its seal (None / "" while it is pending).
SEAL_FIELDS = ("seq", "prev_hash", "hash", "sealed_at")


class AuditEventQuerySet(models.QuerySet):
    pass


class AuditEventManager(models.Manager.from_queryset(AuditEventQuerySet)):
    """Events with their seal's fields (``seq``, ``prev_hash``, ``hash``, ``sealed_at``) joined in."""

    def get_queryset(self):
        return (
            super()
            .get_queryset()
            .annotate(
                seq=F("seal__seq"),
                prev_hash=F("seal__prev_hash"),
                hash=F("seal__hash"),
                sealed_at=F("seal__sealed_at"),
            )
        )


class _SealField:
    """An event's chain field (``seq``, ``prev_hash``, ``hash``, ``sealed_at``), which lives in its seal.

    ``AuditEvent.objects`` joins the seal in and sets the value; an event read otherwise (one
    ``record()`` returned, say) looks its seal up on first use. ``empty`` while it is pending.
    """

    def __init__(self, name: str, empty) -> None:
        self.name, self.empty = name, empty

    def __get__(self, event, owner=None):
        if event is None:
            return self
        values = event.__dict__.setdefault("_seal_values", {})
        if self.name not in values:
            seal = AuditSeal.objects.filter(event_id=event.pk).first() if event.pk is not None else None
            for name in SEAL_FIELDS:
                values[name] = getattr(seal, name) if seal is not None else None
        value = values[self.name]
        return self.empty if value is None else value

    def __set__(self, event, value) -> None:
        event.__dict__.setdefault("_seal_values", {})[self.name] = value


class AuditEvent(models.Model):
    """One thing that happened: who, from where, did what to which object, with what outcome.

    Written once; its place in the chain is its ``AuditSeal``. Read through ``objects``, an
    event carries ``seq``, ``prev_hash``, ``hash`` and ``sealed_at`` from its seal (None and
    "" while it is pending).
    """

    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
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

    # Its seal's fields: joined in by ``objects``, otherwise looked up (None or "" while pending).
    seq = _SealField("seq", None)
    prev_hash = _SealField("prev_hash", "")
    hash = _SealField("hash", "")
    sealed_at = _SealField("sealed_at", None)

    rows = models.Manager()  # the event rows alone, without their seals (what a count needs)
    objects = AuditEventManager()

    class Meta:
        db_table = "audit_event"
        ordering = ["-id"]
        default_manager_name = "objects"
        indexes = [
            models.Index(fields=["target_type", "target_id"], name="audit_target_idx"),
            models.Index(fields=["actor_type", "actor_id"], name="audit_actor_idx"),
            # the "related to" filter (apps.audit.related) matches the related object and the token too
            models.Index(fields=["related_type", "related_id"], name="audit_related_idx"),
            models.Index(fields=["token_id"], name="audit_token_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq or '?'} {self.action} {self.outcome} by {self.actor_type}:{self.actor_name}"

    def refresh_from_db(self, *args, **kwargs) -> None:
        self.__dict__.pop("_seal_values", None)  # the seal may have come since
        super().refresh_from_db(*args, **kwargs)


class AuditSeal(models.Model):
    """An event's place in the hash chain: its sequence number, the previous hash and its hash.

    Inserted once by the sealer, never changed (triggers refuse UPDATE, DELETE and TRUNCATE).
    """

    seq = models.BigIntegerField(primary_key=True)
    event = models.OneToOneField(
        AuditEvent,
        on_delete=models.DO_NOTHING,
        related_name="seal",
        db_column="event_pk",
        editable=False,
        db_constraint=False,  # events are never deleted; a seal without its event breaks the chain, which verify names
    )
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    sealed_at = models.DateTimeField()

    class Meta:
        db_table = "audit_seal"

    def __str__(self) -> str:
        return f"#{self.seq} {self.hash}"


class AuditPending(models.Model):
    """The sealer's work list: one row per committed event without a seal, put there by a trigger.

    The sealer removes an entry in the transaction that inserts its seal; nothing else may
    change or remove one (triggers). The table stays as small as the backlog.
    """

    event = models.OneToOneField(
        AuditEvent,
        on_delete=models.DO_NOTHING,
        primary_key=True,
        related_name="pending",
        db_column="event_pk",
        db_constraint=False,  # as the seal's: no per-row foreign-key check on the hot path
    )

    class Meta:
        db_table = "audit_pending"

    def __str__(self) -> str:
        return f"pending {self.event_id}"


class AuditTreeNode(models.Model):
    """A stored Merkle subtree hash: the complete subtree of ``2**level`` leaves starting at leaf ``idx * 2**level``.

    Written by the sealer in the transaction that seals the subtree's last event (levels 4 and
    up; ``apps.audit.tree``), never changed (triggers refuse UPDATE, DELETE and TRUNCATE).
    """

    pk = models.CompositePrimaryKey("level", "idx")
    level = models.PositiveSmallIntegerField()
    idx = models.BigIntegerField()
    hash = models.CharField(max_length=64)

    class Meta:
        db_table = "audit_tree_node"

    def __str__(self) -> str:
        return f"node {self.level}/{self.idx} {self.hash}"
