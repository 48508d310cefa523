"""Reads for evidence, filtered by rbac: a run is visible where its subject is (``evidence.view``)."""

from __future__ import annotations

from uuid import UUID

from django.db.models import Prefetch, QuerySet

from apps.core.errors import NotFound
from apps.core.principals import Principal
from apps.rbac import services as rbac
from apps.registry.models import Dataset, ModelVersion

from .choices import EvidenceKind, RunStatus
from .models import EvidenceChunk, EvidenceFile, EvidenceRun, FindingReview
from .verdicts import accuracy_check, declared_accuracy, finding_reviews, review_state

__all__ = [
    "dataset_pii_status",
    "evidence_run_get",
    "evidence_run_list",
    "finding_reviews",
    "review_state",
    "version_accuracy_check",
]


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


def version_accuracy_check(
    *, actor: Principal, version: ModelVersion, recent: list[EvidenceRun] | None = None, recent_limit: int = 0
) -> dict | None:
    """The version's declared accuracy against the accuracy its latest succeeded bias report measured.

    The report on the version's evaluation dataset is preferred; see ``verdicts.accuracy_check``
    for the answer's shape (None when the version declares no accuracy or has no such report).
    ``recent`` is the version's newest runs the caller already read (at most ``recent_limit`` of
    them): a page that lists them costs no query more unless the report is older than all of them.
    """
    if declared_accuracy(version.metrics) is None:
        return None

    def pick(runs):
        succeeded = [r for r in runs if r.kind == "bias" and r.status == "succeeded"]
        on_eval = [r for r in succeeded if r.dataset_id == version.evaluation_dataset_id]
        return (on_eval or succeeded or [None])[0]

    if recent is not None:
        run = pick(recent)
        if run is not None or len(recent) < recent_limit:
            return accuracy_check(version, run)
    qs = rbac.restrict(
        actor,
        EvidenceRun.objects.select_related("dataset").filter(version=version, kind="bias", status="succeeded"),
        "evidence.view",
    ).order_by("-created_at", "-id")
    return accuracy_check(version, pick(list(qs[:50])))


# --- a dataset's PII status ------------------------------------------------------------------


def dataset_pii_status(
    *, actor: Principal, dataset: Dataset, recent: list[EvidenceRun] | None = None, recent_limit: int = 0
) -> dict:
    """What the dataset's latest PII scan says, for its page: one of ``not_scanned``, ``scanning``
    (with ``progress`` and ``message``), ``failed`` (failed or cancelled, with ``error``), ``clean`` or
    ``pii_found`` (with ``types``: per entity type the values found and the columns, findings marked
    false positive left out and counted in ``false_positives``); ``scrubbed`` names the scrubbed copy
    the scan wrote (``id``, ``rows``, ``hidden`` when the actor may not see it), and ``run`` is the
    scan, for a link to its evidence.

    A read. ``recent`` is the dataset's newest runs the caller already read with ``evidence_run_list``
    (at most ``recent_limit``): when it holds a PII scan, or is shorter than the limit, no query is sent.
    Otherwise a fixed handful of queries (the run, its chunks and reviews), whatever the dataset's size.
    """
    from .runs import run_progress

    def own_scans(runs):
        return [r for r in runs if r.kind == EvidenceKind.PII_SCAN and r.dataset_id == dataset.pk and not r.version_id]

    run = None
    if recent is not None:
        run = (own_scans(recent) or [None])[0]
    if run is None and (recent is None or len(recent) >= recent_limit):
        run = evidence_run_list(actor=actor, dataset=dataset, kind=EvidenceKind.PII_SCAN).filter(version=None).first()
    if run is None:
        return {"state": "not_scanned", "run": None}
    if run.status in (RunStatus.QUEUED, RunStatus.RUNNING):
        progress, message = run_progress(run)
        return {"state": "scanning", "run": run, "progress": progress, "message": message}
    if run.status != RunStatus.SUCCEEDED or not run.summary:
        return {"state": "failed", "run": run, "error": run.error}
    summary = run.summary
    state = review_state(run) or {}
    false_positives = set(state.get("false_positives", []))
    types: dict[str, dict] = {}
    for finding in summary.get("findings", []):
        if finding.get("id") in false_positives:
            continue
        entry = types.setdefault(str(finding.get("entity_type")), {"count": 0, "rows": 0, "columns": []})
        entry["count"] += int(finding.get("count") or 0)
        entry["rows"] = max(entry["rows"], int(finding.get("rows") or 0))
        entry["columns"].append(str(finding.get("column")))
    scrubbed = summary.get("scrubbed_dataset")
    if isinstance(scrubbed, dict) and scrubbed.get("id") is not None:
        seen = rbac.visible_pks(actor, Dataset, [scrubbed["id"]], "registry.view")
        scrubbed = {"id": scrubbed["id"], "rows": scrubbed.get("rows"), "hidden": scrubbed["id"] not in seen}
    else:
        scrubbed = None
    return {
        "state": "pii_found" if types else "clean",
        "run": run,
        "types": sorted(({"entity_type": k, **v} for k, v in types.items()), key=lambda t: -t["count"]),
        "false_positives": len(false_positives),
        "rows_scanned": summary.get("n_rows"),
        "scrubbed": scrubbed,
    }
