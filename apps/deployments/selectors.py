"""Reads for deployments, filtered by rbac: targets (admins), deployments (whoever may see the release)."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet

from apps.core.errors import NotFound
from apps.core.principals import Principal
from apps.rbac import services as rbac
from apps.registry import selectors as registry

from .models import Deployment, DeploymentStep, DeploymentTarget


def target_list(*, actor: Principal) -> QuerySet[DeploymentTarget]:
    """Every target (global admins: ``deployments.manage_targets``)."""
    rbac.require(actor, "deployments.manage_targets")
    return DeploymentTarget.objects.select_related("environment").order_by("name")


def target_get(*, actor: Principal, target_id: Any) -> DeploymentTarget:
    rbac.require(actor, "deployments.manage_targets")
    target = DeploymentTarget.objects.select_related("environment").filter(public_id=target_id).first()
    if target is None:
        raise NotFound("No such deployment target.")
    return target


def _deployments() -> QuerySet[Deployment]:
    return Deployment.objects.select_related(
        "release", "version", "model", "environment", "target", "replaces", "replaces__version"
    )


def deployment_list(
    *,
    actor: Principal,
    model: str = "",
    target: str = "",
    state: str = "",
    environment: str = "",
) -> QuerySet[Deployment]:
    """Deployments the actor may see (``deployments.view``), newest first, filtered as asked."""
    qs = rbac.restrict(actor, _deployments(), "deployments.view")
    if model:
        qs = qs.filter(model__name=model)
    if target:
        qs = qs.filter(target__name=target)
    if state:
        qs = qs.filter(state=state)
    if environment:
        qs = qs.filter(environment__name=environment)
    return qs.order_by("-created_at", "-id")


def deployment_get(*, actor: Principal, deployment_id: Any) -> Deployment:
    """One deployment with its step timeline; 404 when missing or out of the actor's scope."""
    qs = _deployments().prefetch_related(Prefetch("timeline", queryset=DeploymentStep.objects.order_by("id")))
    return rbac.get_visible(actor, qs, "deployments.view", public_id=deployment_id)


def model_deployments(*, actor: Principal, name: str) -> QuerySet[Deployment]:
    """The deployments of a model the actor may see (404 for a model they may not)."""
    model = registry.model_get(actor=actor, name=name)
    return deployment_list(actor=actor).filter(model=model)


def target_names() -> list[str]:
    return sorted(DeploymentTarget.objects.values_list("name", flat=True))
