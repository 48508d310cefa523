"""Reads for evidence, filtered by rbac: a run is visible where its subject is (``evidence.view``)."""

from __future__ import annotations

from uuid import UUID

from django.db.models import QuerySet

from apps.core.errors import NotFound
from apps.core.principals import Principal
from apps.rbac import services as rbac
from apps.registry.models import Dataset, ModelVersion

from .models import EvidenceRun


def _runs() -> QuerySet[EvidenceRun]:
    return EvidenceRun.objects.select_related(
        "job", "version", "version__model", "dataset", "requested_by", "requested_by_service_account"
    )


def evidence_run_get(*, actor: Principal, run_id: UUID | str) -> EvidenceRun:
    """One run by its public id; 404 when missing or out of the actor's scope."""
    try:
        run_id = UUID(str(run_id))
    except ValueError:
        raise NotFound("No evidence run matches the given query.")
    return rbac.get_visible(actor, _runs(), "evidence.view", public_id=run_id)


def evidence_run_list(
    *, actor: Principal, version: ModelVersion | None = None, dataset: Dataset | None = None, kind: str = ""
) -> QuerySet[EvidenceRun]:
    """A version's runs (or a dataset's, its own and versions' evaluated on it) the actor may see, newest first."""
    qs = _runs()
    if version is not None:
        qs = qs.filter(version=version)
    if dataset is not None:
        qs = qs.filter(dataset=dataset)
    if kind:
        qs = qs.filter(kind=kind)
    return rbac.restrict(actor, qs, "evidence.view").order_by("-created_at", "-id")
