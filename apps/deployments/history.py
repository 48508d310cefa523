"""This app's parts of a subject for the audit trail's "related to" filter (``apps.audit.related``): the
deployments of the releases found below (a model's, a version's, a release's), or one deployment."""

from __future__ import annotations

from apps.audit import related

from .models import Deployment


def _deployments(kind: str, key: str, parts: related.Parts) -> None:
    if kind == "deployment":
        found = Deployment.objects.filter(public_id=related.public_id(key))
    else:
        found = Deployment.objects.filter(release__public_id__in=parts.ids("release"))
    parts.add("deployment", *found.values_list("public_id", flat=True))


def register() -> None:
    for kind in ("model", "version", "release", "deployment", "team"):
        related.provide(kind, _deployments)
