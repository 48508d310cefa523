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
