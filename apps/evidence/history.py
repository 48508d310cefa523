"""This app's parts of a subject for the audit trail's "related to" filter (``apps.audit.related``): the
evidence runs on a model (or a version), their result files and their findings' reviews."""

from __future__ import annotations

from django.db.models import Q

from apps.audit import related

from .models import EvidenceFile, EvidenceRun, FindingReview


def _runs(kind: str, key: str, parts: related.Parts) -> None:
    on = Q(version_id__in=parts.ids("model_version"))
    if kind in ("model", "team"):
        on |= Q(model_id__in=parts.ids("model"))
    if kind == "team":  # the runs on the team's datasets too
        on |= Q(dataset_id__in=parts.ids("dataset"))
    runs = list(EvidenceRun.objects.filter(on).values_list("pk", "public_id"))
    if not runs:
        return
    pks = [pk for pk, _ in runs]
    parts.add("evidence_run", *(public_id for _, public_id in runs))
    parts.add("evidence_file", *EvidenceFile.objects.filter(run_id__in=pks).values_list("pk", flat=True))
    parts.add("finding_review", *FindingReview.objects.filter(run_id__in=pks).values_list("pk", flat=True))


def register() -> None:
    related.provide("model", _runs)
    related.provide("version", _runs)
    related.provide("team", _runs)
