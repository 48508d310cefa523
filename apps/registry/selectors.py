"""Reads for the registry, filtered by rbac: lists show only what the actor may see."""

from __future__ import annotations

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from apps.accounts.models import Team
from apps.core import fastpath
from apps.core.errors import NotFound
from apps.core.principals import Principal, same_person
from apps.rbac import services as rbac

from .choices import FactsChangeStatus
from .models import Dataset, FactsChange, ModelVersion, RegisteredModel


def _version_count() -> Coalesce:
    """Each model's version count, counted per model row shown (the (model, number) index answers it).

    A correlated subquery rather than a join with GROUP BY: the join aggregates the whole versions
    table before the page is cut, so a page of 50 models cost as much as counting 100,000 versions.
    """
    per_model = ModelVersion.objects.filter(model=OuterRef("pk")).order_by().values("model").annotate(n=Count("*"))
    return Coalesce(Subquery(per_model.values("n")[:1], output_field=IntegerField()), 0)


def model_list(
    *,
    actor: Principal,
    search: str = "",
    team: str = "",
    risk_tier: str = "",
    data_category: str = "",
) -> QuerySet[RegisteredModel]:
    """Models the actor may see, with their team and version count, filtered as asked."""
    qs = rbac.restrict(actor, RegisteredModel.objects.all(), "registry.view").select_related("owner_team", "created_by")
    if search:
        qs = qs.filter(Q(name__icontains=search) | Q(description__icontains=search))
    if team:
        qs = qs.filter(owner_team__name=team)
    if risk_tier:
        qs = qs.filter(risk_tier=risk_tier)
    if data_category:
        # JSON list membership that works on SQLite and PostgreSQL alike.
        qs = qs.filter(data_categories__icontains=f'"{data_category}"')
    return qs.annotate(version_count=_version_count()).order_by("name")


def model_get(*, actor: Principal, name: str) -> RegisteredModel:
    """One model by name; 404 when missing or out of the actor's scope."""
    return rbac.get_visible(
        actor,
        RegisteredModel.objects.select_related("owner_team", "created_by").annotate(version_count=_version_count()),
        "registry.view",
        name=name,
    )


def version_list(*, actor: Principal, model: RegisteredModel) -> QuerySet[ModelVersion]:
    """A model's versions the actor may see, newest first, with everything the API and pages show."""
    qs = ModelVersion.objects.filter(model=model).select_related(
        "model",
        "model__owner_team",
        "evaluation_dataset",
        "created_by",
        "created_by_service_account",
        "verification_job",
    )
    return rbac.restrict(actor, qs, "registry.view").prefetch_related("training_datasets").order_by("-number")


_MODEL_BY_NAME = fastpath.RowByUniqueField(RegisteredModel, "name")
_VERSION_BY_NUMBER = fastpath.RowByUniqueField(ModelVersion, "model", "number")
_TEAM_BY_ID = fastpath.RowByUniqueField(Team, "id")


def version_get(*, actor: Principal, model_name: str, number: int) -> ModelVersion:
    """One version by model name and number; 404 when missing or out of the actor's scope."""
    qs = ModelVersion.objects.select_related(
        "model",
        "model__owner_team",
        "evaluation_dataset",
        "created_by",
        "created_by_service_account",
        "verification_job",
    ).prefetch_related("training_datasets")
    return rbac.get_visible(actor, qs, "registry.view", model__name=model_name, number=number)


def version_get_for_gate(*, actor: Principal, model_name: str, number: int) -> ModelVersion:
    """One version as the gate reads it, on every CI run: the model and its team, nothing else.

    Three prepared single-row reads (``fastpath.RowByUniqueField``) instead of the joins and the
    dataset prefetch of ``version_get``, whose pages show what the gate never does; the version's
    authors load only when an answer names them. 404 when missing or out of the actor's scope
    (``rbac.visible``: the same check and audited denial as ``version_get``'s).
    """
    model = _MODEL_BY_NAME.get(model_name)
    version = _VERSION_BY_NUMBER.get(model.pk, number) if model is not None else None
    if version is None:
        raise NotFound("No model version matches the given query.")
    version.model = model
    model.owner_team = _TEAM_BY_ID.get(model.owner_team_id)
    return rbac.visible(actor, version, "registry.view")


def dataset_list(*, actor: Principal, search: str = "", team: str = "") -> QuerySet[Dataset]:
    """Datasets the actor may see, newest first, filtered by name and team."""
    qs = rbac.restrict(
        actor,
        Dataset.objects.select_related(
            "owner_team", "source", "created_by", "created_by_service_account", "verification_job"
        ),
        "registry.view",
    )
    if search:
        qs = qs.filter(name__icontains=search)
    if team:
        qs = qs.filter(owner_team__name=team)
    return qs.order_by("-created_at")


def dataset_get(*, actor: Principal, dataset_id: int) -> Dataset:
    """One dataset by id; 404 when missing or out of the actor's scope."""
    return rbac.get_visible(
        actor,
        Dataset.objects.select_related(
            "owner_team", "source", "created_by", "created_by_service_account", "verification_job"
        ),
        "registry.view",
        pk=dataset_id,
    )


def dataset_derived_hidden_count(*, actor: Principal, dataset: Dataset) -> int:
    """How many datasets derived from ``dataset`` are outside the actor's scope (shown as a count, never named)."""
    derived = Dataset.objects.filter(source=dataset)
    return derived.count() - rbac.restrict(actor, derived, "registry.view").count()


def model_inventory(
    *, actor: Principal, search: str = "", team: str = "", risk_tier: str = "", data_category: str = ""
) -> QuerySet[RegisteredModel]:
    """The dashboard inventory: ``model_list`` plus each model's latest version number and status."""
    latest = ModelVersion.objects.filter(model=OuterRef("pk")).order_by("-number")
    models = model_list(actor=actor, search=search, team=team, risk_tier=risk_tier, data_category=data_category)
    return models.annotate(
        latest_version_number=Subquery(latest.values("number")[:1]),
        latest_version_status=Subquery(latest.values("status")[:1]),
    )


def model_team_names(*, actor: Principal) -> list[str]:
    """Names of the teams owning models the actor may see (the inventory's team filter)."""
    qs = rbac.restrict(actor, RegisteredModel.objects.all(), "registry.view")
    return list(qs.order_by("owner_team__name").values_list("owner_team__name", flat=True).distinct())


# ---------------------------------------------------------------------------------------------
# Facts changes waiting for (or decided by) a compliance officer


def _facts_changes() -> QuerySet[FactsChange]:
    return FactsChange.objects.select_related(
        "model", "model__owner_team", "proposed_by", "proposed_by_service_account", "decided_by"
    )


def facts_change_list(*, actor: Principal, model: str = "", status: str = "") -> QuerySet[FactsChange]:
    """Facts changes of the models the actor may see, newest first, filtered by model name and status."""
    qs = rbac.restrict(actor, _facts_changes(), "registry.view")
    if model:
        qs = qs.filter(model__name=model)
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("-created_at", "-id")


def facts_change_get(*, actor: Principal, change_id) -> FactsChange:
    """One facts change by its public id; 404 when missing or its model is out of the actor's scope."""
    return rbac.get_visible(actor, _facts_changes(), "registry.view", public_id=change_id)


def facts_change_pending(*, actor: Principal, model: RegisteredModel) -> FactsChange | None:
    """The model's pending facts change, if any (the caller has already read the model)."""
    return facts_change_list(actor=actor, model=model.name, status=FactsChangeStatus.PENDING).first()


def facts_change_can_decide(*, actor: Principal, change: FactsChange) -> bool:
    """Whether the actor may approve or reject this change: the permission, no auditor, not the proposer."""
    return rbac.can_approve(actor, change.model, "registry.approve_facts") and not same_person(actor, change.proposer())


def facts_change_queue(*, actor: Principal) -> list[FactsChange]:
    """Pending facts changes the actor may decide on (never their own), oldest first."""
    pending = facts_change_list(actor=actor, status=FactsChangeStatus.PENDING).order_by("created_at", "id")
    return [c for c in pending if facts_change_can_decide(actor=actor, change=c)]
