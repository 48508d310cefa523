"""This app's parts of a subject for the audit trail's "related to" filter (``apps.audit.related``): the
release requests for a model's versions (or one release), their approvals and post-release reviews."""

from __future__ import annotations

from apps.audit import related

from .models import Approval, PostReleaseReview, ReleaseRequest


def _releases(kind: str, key: str, parts: related.Parts) -> None:
    if kind == "release":
        requests = ReleaseRequest.objects.filter(public_id=related.public_id(key))
    else:
        requests = ReleaseRequest.objects.filter(version_id__in=parts.ids("model_version"))
    found = list(requests.values_list("pk", "public_id"))
    if not found:
        return
    pks = [pk for pk, _ in found]
    parts.add("release", *(public_id for _, public_id in found))
    parts.add("approval", *Approval.objects.filter(release_id__in=pks).values_list("pk", flat=True))
    parts.add("post_release_review", *PostReleaseReview.objects.filter(release_id__in=pks).values_list("pk", flat=True))


def register() -> None:
    for kind in ("model", "version", "release", "team"):
        related.provide(kind, _releases)
