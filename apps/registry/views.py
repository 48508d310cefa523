"""Dashboard pages for the registry (read-only): inventory, model, version, datasets.

Thin: every read goes through ``apps.registry.selectors``, which apply rbac, so
a list shows only what the person may see and anything else is a 404.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_safe

from apps.accounts.principals import principal_for_user

from . import selectors
from .choices import ColumnRole, DataCategory, VersionStatus
from .forms import DatasetFilterForm, ModelFilterForm

PAGE_SIZE = 50


def _label(choices, value: str) -> str:
    return choices(value).label if value in choices.values else value


def _category_labels(values) -> list[str]:
    return [_label(DataCategory, v) for v in values or []]


def _display(value: Any) -> str:
    """A JSON value as text a person reads: numbers kept short, lists joined, objects as JSON."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict | list):
        return json.dumps(value, indent=2, sort_keys=True)
    return str(value)


def _rows(data: dict | None) -> list[tuple[str, str, str]]:
    """(key, readable label, display value) for a JSON object such as metrics or a model card."""
    if not isinstance(data, dict):
        return []
    return [(str(k), str(k).replace("_", " ").capitalize(), _display(v)) for k, v in data.items()]


@login_required
@require_safe
def model_list(request):
    """The model inventory, filtered by search, team, risk tier and data category."""
    actor = principal_for_user(request.user)
    form = ModelFilterForm(request.GET or None, teams=selectors.model_team_names(actor=actor))
    page = Paginator(selectors.model_inventory(actor=actor, **form.filters()), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    for model in page:
        model.category_labels = _category_labels(model.data_categories)
        model.latest_status_label = (
            _label(VersionStatus, model.latest_version_status) if model.latest_version_status else ""
        )
    return render(request, "registry/model_list.html", {"form": form, "page": page})


@login_required
@require_safe
def model_detail(request, name: str):
    """One model: its governance fields and its versions."""
    actor = principal_for_user(request.user)
    model = selectors.model_get(actor=actor, name=name)
    versions = list(selectors.version_list(actor=actor, model=model))
    return render(
        request,
        "registry/model_detail.html",
        {"model": model, "versions": versions, "category_labels": _category_labels(model.data_categories)},
    )


@login_required
@require_safe
def version_detail(request, name: str, number: int):
    """One version: artifact and digest, status, lineage, metrics and model card."""
    actor = principal_for_user(request.user)
    version = selectors.version_get(actor=actor, model_name=name, number=number)
    return render(
        request,
        "registry/version_detail.html",
        {
            "version": version,
            "model": version.model,
            "training_datasets": list(version.training_datasets.all()),
            "metrics": _rows(version.metrics),
            "model_card": _rows(version.model_card),
            "category_labels": _category_labels(version.model.data_categories),
        },
    )


@login_required
@require_safe
def dataset_list(request):
    """Datasets the person may see, newest first."""
    actor = principal_for_user(request.user)
    form = DatasetFilterForm(request.GET or None)
    page = Paginator(selectors.dataset_list(actor=actor, **form.filters()), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "registry/dataset_list.html", {"form": form, "page": page})


@login_required
@require_safe
def dataset_detail(request, dataset_id: int):
    """One dataset: location, digest, row count and its schema with a role per column."""
    actor = principal_for_user(request.user)
    dataset = selectors.dataset_get(actor=actor, dataset_id=dataset_id)
    columns = [
        {
            "name": column.get("name", ""),
            "type": column.get("type", ""),
            "role": column.get("role", ""),
            "role_label": _label(ColumnRole, column.get("role", "")),
        }
        for column in (dataset.schema or [])
        if isinstance(column, dict)
    ]
    return render(request, "registry/dataset_detail.html", {"dataset": dataset, "columns": columns})
