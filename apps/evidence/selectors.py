"""Reads for evidence, filtered by rbac: a run is visible where its subject is (``evidence.view``)."""

from __future__ import annotations

from uuid import UUID

from django.db.models import Prefetch, QuerySet

from apps.core.errors import NotFound
from apps.core.principals import Principal
from apps.rbac import services as rbac
from apps.registry.models import Dataset, ModelVersion

from .models import EvidenceChunk, EvidenceFile, EvidenceRun, FindingReview, FindingVerdict


def _runs() -> QuerySet[EvidenceRun]:
    return EvidenceRun.objects.select_related(
        "job", "version", "version__model", "dataset", "requested_by", "requested_by_service_account"
    ).prefetch_related(
        Prefetch("files", queryset=EvidenceFile.objects.order_by("name")),
        Prefetch("chunks", queryset=EvidenceChunk.objects.select_related("job").order_by("index")),
        Prefetch(
            "reviews",
            queryset=FindingReview.objects.select_related("reviewer", "reviewer_service_account").order_by(
                "-created_at", "-id"
            ),
        ),
    )


def with_dataset_visibility(actor: Principal, runs):
    """Mark each run whose dataset the actor may not see (``run.dataset_hidden``): a version's run on
    another team's dataset shows "a dataset you cannot see", never its name or digest. Returns ``runs``."""
    for run in runs:
        run.dataset_hidden = run.dataset_id is not None and not rbac.allows(actor, "registry.view", run.dataset)
    return runs


def evidence_run_get(*, actor: Principal, run_id: UUID | str) -> EvidenceRun:
    """One run by its public id; 404 when missing or out of the actor's scope. ``dataset_hidden`` is set."""
    try:
        run_id = UUID(str(run_id))
    except ValueError:
        raise NotFound("No evidence run matches the given query.")
    run = rbac.get_visible(actor, _runs(), "evidence.view", public_id=run_id)
    with_dataset_visibility(actor, [run])
    return run


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


def finding_reviews(run: EvidenceRun) -> dict[str, FindingReview]:
    """The newest review of each reviewed finding of a PII scan (from the prefetched reviews)."""
    latest: dict[str, FindingReview] = {}
    for review in run.reviews.all():  # newest first
        latest.setdefault(review.finding, review)
    return latest


def review_state(run: EvidenceRun) -> dict | None:
    """A PII scan's findings split by their reviews: false positives are counted apart from the rest.

    ``unresolved`` are the findings not marked false positive; that is what policies read.
    None for other kinds and unfinished runs.
    """
    if run.kind != "pii_scan" or not run.summary:
        return None
    latest = finding_reviews(run)
    false_positives, confirmed, unresolved = [], [], []
    for finding in run.summary.get("findings", []):
        review = latest.get(finding.get("id"))
        if review is not None and review.verdict == FindingVerdict.FALSE_POSITIVE:
            false_positives.append(finding.get("id"))
        else:
            unresolved.append(finding.get("id"))
            if review is not None:
                confirmed.append(finding.get("id"))
    return {
        "unresolved": unresolved,
        "false_positives": false_positives,
        "confirmed": confirmed,
        "unresolved_count": len(unresolved),
    }
