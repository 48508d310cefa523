"""Reads for the registry, filtered by rbac: lists show only what the actor may see."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from apps.core.principals import Principal
from apps.rbac import services as rbac

from .models import Dataset, ModelVersion, RegisteredModel


def model_list(
    *,
    actor: Principal,
    search: str = "",
    team: str = "",
    risk_tier: str = "",
    data_category: str = "",
) -> QuerySet[RegisteredModel]:
    """Models the actor may see, with their team and version count, filtered as asked."""
    qs = rbac.restrict(actor, RegisteredModel.objects.all(), "registry.view").select_related("owner_team")
    if search:
        qs = qs.filter(Q(name__icontains=search) | Q(description__icontains=search))
    if team:
        qs = qs.filter(owner_team__name=team)
    if risk_tier:
        qs = qs.filter(risk_tier=risk_tier)
    if data_category:
        # JSON list membership that works on SQLite and PostgreSQL alike.
        qs = qs.filter(data_categories__icontains=f'"{data_category}"')
    return qs.annotate(version_count=Count("versions")).order_by("name")


def model_get(*, actor: Principal, name: str) -> RegisteredModel:
    """One model by name; 404 when missing or out of the actor's scope."""
    return rbac.get_visible(
        actor, RegisteredModel.objects.select_related("owner_team"), "registry.view", name=name
    )


def version_list(*, actor: Principal, model: RegisteredModel) -> QuerySet[ModelVersion]:
    qs = ModelVersion.objects.filter(model=model).select_related(
        "model", "model__owner_team", "evaluation_dataset", "created_by", "created_by_service_account"
    )
    return rbac.restrict(actor, qs, "registry.view").prefetch_related("training_datasets").order_by("-number")


def version_get(*, actor: Principal, model_name: str, number: int) -> ModelVersion:
    qs = ModelVersion.objects.select_related(
        "model", "model__owner_team", "evaluation_dataset", "created_by", "created_by_service_account"
    ).prefetch_related("training_datasets")
    return rbac.get_visible(actor, qs, "registry.view", model__name=model_name, number=number)


def dataset_list(*, actor: Principal, search: str = "", team: str = "") -> QuerySet[Dataset]:
    qs = rbac.restrict(actor, Dataset.objects.select_related("owner_team", "source"), "registry.view")
    if search:
        qs = qs.filter(name__icontains=search)
    if team:
        qs = qs.filter(owner_team__name=team)
    return qs.order_by("-created_at")


def dataset_get(*, actor: Principal, dataset_id: int) -> Dataset:
    return rbac.get_visible(
        actor, Dataset.objects.select_related("owner_team", "source", "created_by"), "registry.view", pk=dataset_id
    )
