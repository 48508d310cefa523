"""The audit trail read as a whole, for people: exports and verification, each behind ``rbac``.

Apart from ``apps.audit.services`` (the one writer, ``record``), which ``rbac`` itself calls to
audit grants and denials: this module checks permissions, so it sits above both.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from apps.core.errors import ValidationFailed
from apps.core.principals import Principal
from apps.rbac import services as rbac

from . import checkpoints, tree
from .exports import FORMATS, export_queryset
from .filters import EventFilter, resolve_subject
from .models import AuditSeal
from .services import record
from .verification import VerifyResult, verify_database


@dataclass(frozen=True)
class ExportPlan:
    """What an export will contain: the format, the filter, and the chain head it stops at."""

    format: str
    filters: EventFilter
    up_to_seq: int
    rows: int


def export_start(*, actor: Principal, filters: EventFilter, fmt: str) -> ExportPlan:
    """Check ``audit.export``, fix the chain head, count the rows and record ``audit.exported``.

    The export holds the sealed chain up to its head when the export started (events
    still pending are not in it: an export seals nothing); it stops at that head, so
    its row count is exact and the ``audit.exported`` event (written and committed
    before a byte is sent) is not part of the export it describes.
    """
    if fmt not in FORMATS:
        raise ValidationFailed(f"format: choose one of {', '.join(FORMATS)}.", errors={"format": ["Unknown format."]})
    rbac.require(actor, "audit.export", audit_action="audit.exported")
    filters = resolve_subject(filters)
    with transaction.atomic():
        head = AuditSeal.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
        rows = export_queryset(filters, up_to_seq=head).count()
        record(
            action="audit.exported",
            actor=actor,
            target=("audit_trail", "", "audit trail"),
            after={"format": fmt, "filters": filters.as_params(), "rows": rows, "up_to_seq": head},
        )
    return ExportPlan(format=fmt, filters=filters, up_to_seq=head, rows=rows)


def trail_verify(*, actor: Principal) -> VerifyResult:
    """Check ``audit.view``, then verify the sealed chain against the checkpoints (sealing nothing)."""
    rbac.require(actor, "audit.view", audit_action="audit.verified")
    return verify_database()


@dataclass(frozen=True)
class SignedHead:
    """The newest signed tree head and the keys that verify it (None for the head when nothing is signed yet)."""

    checkpoint: checkpoints.Checkpoint | None
    verifier_keys: list[str]
    public_keys_pem: list[str]


def checkpoint_latest(*, actor: Principal) -> SignedHead:
    """Check ``audit.view``; the newest checkpoint with a signed tree head, and the published keys."""
    rbac.require(actor, "audit.view", audit_action="audit.proof_requested")
    return SignedHead(
        checkpoint=checkpoints.latest_verified(),
        verifier_keys=checkpoints.verifier_keys(),
        public_keys_pem=[checkpoints.public_pem(k) for k in checkpoints.trusted_public_keys().values()],
    )


def _size(value, name: str, *, default: int | None = None) -> int:
    if value in (None, ""):
        if default is None:
            raise ValidationFailed(f"{name}: required.", errors={name: ["This parameter is required."]})
        return default
    text = str(value).strip()
    if not text.isdigit() or int(text) < 1:
        raise ValidationFailed(f"{name}: a positive whole number.", errors={name: ["Not a positive whole number."]})
    return int(text)


@dataclass(frozen=True)
class ConsistencyProof:
    old_size: int
    new_size: int
    old_root: str
    new_root: str
    proof: list[str]


def proof_consistency(*, actor: Principal, old, new=None) -> ConsistencyProof:
    """Check ``audit.view``; the RFC 9162 consistency proof from the tree of ``old`` events to that of ``new``.

    ``new`` defaults to the newest signed tree head (or, with none yet, the sealed trail). Both
    roots are returned for convenience; an auditor compares them with checkpoints they hold.
    """
    rbac.require(actor, "audit.view", audit_action="audit.proof_requested")
    sealed = tree.sealed_size()
    latest = checkpoints.latest_verified() if new in (None, "") else None
    new_size = _size(new, "to", default=latest.seq if latest else sealed)
    old_size = _size(old, "from")
    if new_size > sealed:
        raise ValidationFailed(f"to: the trail has {sealed} sealed events.", errors={"to": ["Beyond the trail."]})
    if old_size > new_size:
        raise ValidationFailed("from: must not exceed to.", errors={"from": ["Larger than to."]})
    reader = tree.TreeReader(new_size)
    proof = reader.consistency(old_size)
    old_root = tree.TreeReader(old_size).root()
    return ConsistencyProof(old_size, new_size, old_root.hex(), reader.root().hex(), [p.hex() for p in proof])


@dataclass(frozen=True)
class InclusionProof:
    seq: int
    leaf_index: int
    tree_size: int
    event_hash: str
    root: str
    proof: list[str]


def proof_inclusion(*, actor: Principal, seq, size=None) -> InclusionProof:
    """Check ``audit.view``; the inclusion proof of event ``seq`` in the tree of ``size`` events.

    ``size`` defaults to the newest signed tree head that holds the event (or the sealed trail).
    """
    rbac.require(actor, "audit.view", audit_action="audit.proof_requested")
    seq_n = _size(seq, "seq")
    sealed = tree.sealed_size()
    latest = checkpoints.latest_verified() if size in (None, "") else None
    default = latest.seq if latest and latest.seq >= seq_n else sealed
    size_n = _size(size, "tree_size", default=default)
    if size_n > sealed:
        raise ValidationFailed(
            f"tree_size: the trail has {sealed} sealed events.", errors={"tree_size": ["Beyond the trail."]}
        )
    if seq_n > size_n:
        raise ValidationFailed("seq: not in a tree of that size.", errors={"seq": ["Beyond tree_size."]})
    reader = tree.TreeReader(size_n)
    proof = reader.inclusion([seq_n])[seq_n]
    event_hash = AuditSeal.objects.values_list("hash", flat=True).get(seq=seq_n)
    return InclusionProof(seq_n, seq_n - 1, size_n, event_hash, reader.root().hex(), [p.hex() for p in proof])
