"""This app's parts of a subject for the audit trail's "related to" filter (``apps.audit.related``): a model,
its versions and its facts changes; or one version."""

from __future__ import annotations

from apps.audit import related

from .models import Dataset, FactsChange, ModelVersion, RegisteredModel


def _model(kind: str, name: str, parts: related.Parts) -> None:
    model = RegisteredModel.objects.filter(name=name).values_list("pk", flat=True).first()
    if model is None:
        return
    parts.add("model", model)
    parts.add("model_version", *ModelVersion.objects.filter(model_id=model).values_list("pk", flat=True))
    parts.add("facts_change", *FactsChange.objects.filter(model_id=model).values_list("public_id", flat=True))


def _version(kind: str, key: str, parts: related.Parts) -> None:
    name, _, number = key.rpartition(":")
    if number.isdigit():
        found = ModelVersion.objects.filter(model__name=name, number=int(number)).values_list("pk", flat=True)
        parts.add("model_version", *found)


def _team(kind: str, name: str, parts: related.Parts) -> None:
    teams = parts.ids("team")
    if not teams:
        return
    models = list(RegisteredModel.objects.filter(owner_team_id__in=teams).values_list("pk", flat=True))
    parts.add("model", *models)
    parts.add("model_version", *ModelVersion.objects.filter(model_id__in=models).values_list("pk", flat=True))
    parts.add("facts_change", *FactsChange.objects.filter(model_id__in=models).values_list("public_id", flat=True))
    parts.add("dataset", *Dataset.objects.filter(owner_team_id__in=teams).values_list("pk", flat=True))


def register() -> None:
    related.provide("model", _model)
    related.provide("version", _version)
    related.provide("team", _team)
