"""Requesting evidence: a run (or an equal one reused), and a verified version's default evidence."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from apps.audit import services as audit
from apps.audit.choices import Outcome
from apps.core.errors import Conflict, Denied, NotFound, ValidationFailed
from apps.core.principals import Principal
from apps.jobs import services as jobs
from apps.rbac import services as rbac
from apps.registry.choices import DatasetStatus, VersionStatus
from apps.registry.models import Dataset, ModelVersion

from ..choices import REUSABLE, EvidenceKind
from ..models import EvidenceRun
from ..parameters import _refuse, kind_parameters
from .common import AVAILABLE_KINDS, RUN_JOB, WORKER_DEFAULTS, _requester


class SubjectNotReady(Conflict):
    """The version or dataset is not verified (pending, invalid or retired): nothing to compute evidence on (409)."""

    code = "subject_not_ready"
    title = "Subject not ready"


@dataclass(frozen=True)
class EvidenceRequested:
    """What ``evidence_request`` did: the run, and whether it is an earlier run reused."""

    run: EvidenceRun
    reused: bool


def _version(version: ModelVersion | tuple[str, int]) -> ModelVersion:
    if isinstance(version, ModelVersion):
        version = (version.model.name, version.number)
    model_name, number = version
    found = (
        ModelVersion.objects.select_related("model", "evaluation_dataset")
        .filter(model__name=model_name, number=number)
        .first()
    )
    if found is None:
        raise NotFound(f"No version {number} of a model named {model_name!r}.")
    return found


def _named_dataset(actor: Principal, dataset_id: Any) -> Dataset:
    """The dataset a version's evidence should use instead of its evaluation dataset; 400 unless visible."""
    try:
        dataset_id = int(dataset_id)
    except (TypeError, ValueError):
        raise ValidationFailed("dataset_id: expected an integer.", errors={"dataset_id": ["Not an integer."]})
    found = rbac.restrict(actor, Dataset.objects.filter(pk=dataset_id), "registry.view").first()
    if found is None:
        raise ValidationFailed(
            f"dataset_id: no dataset with id {dataset_id} (or not visible to you).",
            errors={"dataset_id": [f"unknown dataset: {dataset_id}"]},
        )
    return found


def _check_kind(kind: str) -> str:
    if kind not in EvidenceKind.values:
        raise ValidationFailed(
            f"Unknown kind {kind!r}; choose one of: {', '.join(AVAILABLE_KINDS)}.",
            errors={"kind": [f"unknown kind: {kind}"]},
        )
    if kind not in AVAILABLE_KINDS:
        raise ValidationFailed(
            f"Evidence of kind {kind!r} is not available yet; available: {', '.join(AVAILABLE_KINDS)}.",
            errors={"kind": [f"not available yet: {kind}"]},
        )
    return kind


def _check_ready(version: ModelVersion | None, dataset: Dataset) -> None:
    if version is not None and version.status != VersionStatus.READY:
        raise SubjectNotReady(
            f"Version {version.number} of {version.model.name} is {version.status.replace('_', ' ')}, not ready: "
            "evidence is computed on verified versions only."
        )
    if dataset.status != DatasetStatus.READY:
        raise SubjectNotReady(
            f"Dataset {dataset.pk} ({dataset.name}) is {dataset.status.replace('_', ' ')}, not ready: "
            "evidence is computed on verified datasets only."
        )


def reuse_key(kind: str, input_digests: dict, parameters: dict) -> str:
    """SHA-256 over the kind, the inputs' digests and the canonical parameters."""
    canonical = json.dumps(
        {"kind": kind, "inputs": input_digests, "parameters": parameters},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@transaction.atomic
def evidence_request(
    *,
    actor: Principal,
    kind: str,
    version: ModelVersion | tuple[str, int] | None = None,
    dataset_id: int | None = None,
    parameters: dict | None = None,
    rerun: bool = False,
) -> EvidenceRequested:
    """Request evidence of ``kind`` on a version (with its evaluation dataset, or ``dataset_id``) or a dataset.

    Reuses a queued, running or succeeded run of the same subject with the same reuse key
    unless ``rerun``. Writes ``evidence_run.requested`` or ``evidence_run.reused``; a refusal
    of access is audited by the error handlers as ``evidence_run.requested`` denied.
    """
    subject_version = _version(version) if version is not None else None
    if subject_version is not None:
        rbac.require(actor, "evidence.request", subject_version, audit_action="evidence_run.requested")
        if dataset_id is not None:
            dataset = _named_dataset(actor, dataset_id)
        elif subject_version.evaluation_dataset_id:
            dataset = subject_version.evaluation_dataset
        else:
            raise _refuse(
                f"Version {subject_version.number} of {subject_version.model.name} has no evaluation dataset; "
                "name one with dataset_id.",
                field="dataset_id",
            )
        scope = {"owner_team_id": subject_version.model.owner_team_id, "model_id": subject_version.model_id}
    else:
        if dataset_id is None:
            raise ValidationFailed("Name a version or a dataset to compute evidence on.")
        dataset = Dataset.objects.filter(pk=dataset_id).first()
        if dataset is None:
            raise NotFound(f"No dataset with id {dataset_id}.")
        rbac.require(actor, "evidence.request", dataset, audit_action="evidence_run.requested")
        scope = {"owner_team_id": dataset.owner_team_id, "model_id": None}

    kind = _check_kind(kind)
    _check_ready(subject_version, dataset)
    parameters = kind_parameters(kind, parameters, dataset, subject_version)

    digests = {"dataset": dataset.sha256}
    if subject_version is not None:
        digests["model_version"] = subject_version.sha256
    key = reuse_key(kind, digests, parameters)

    if not rerun:
        earlier = (
            EvidenceRun.objects.filter(reuse_key=key, status__in=REUSABLE, version=subject_version, dataset=dataset)
            .select_related("job", "version__model", "dataset")
            .order_by("-created_at", "-id")
            .first()
        )
        if earlier is not None:
            audit.record(
                action="evidence_run.reused",
                actor=actor,
                target=earlier,
                related=subject_version or dataset,
                after={"kind": kind, "status": earlier.status, "parameters": parameters},
            )
            return EvidenceRequested(run=earlier, reused=True)

    run = EvidenceRun.objects.create(
        kind=kind,
        version=subject_version,
        dataset=dataset,
        parameters=parameters,
        input_digests=digests,
        reuse_key=key,
        **scope,
        **_requester(actor),
    )
    run.job = jobs.job_enqueue(kind=RUN_JOB, target=run, params={"run_id": run.pk}, actor=actor)
    run.save(update_fields=["job", "updated_at"])
    audit.record(
        action="evidence_run.requested",
        actor=actor,
        target=run,
        related=subject_version or dataset,
        after={
            "kind": kind,
            "dataset": dataset.pk,
            "parameters": parameters,
            "input_digests": digests,
            "rerun": bool(rerun),
        },
        artifact_sha256=subject_version.sha256 if subject_version is not None else dataset.sha256,
    )
    return EvidenceRequested(run=run, reused=False)


def _author(version: ModelVersion) -> Principal | None:
    """Who registered the version, as the principal that asks for its default evidence."""
    from apps.accounts.principals import principal_for_service_account, principal_for_user

    if version.created_by_service_account_id:
        return principal_for_service_account(version.created_by_service_account)
    if version.created_by_id:
        return principal_for_user(version.created_by)
    return None


def default_evidence_request(*, version_id: int) -> list[EvidenceRun]:
    """Request the model's default evidence for a version that was just verified, as its author.

    Each kind is asked for on its own, with the same rules as any request (the author must
    hold ``evidence.request``; an equal run is reused). A kind that cannot be computed (no
    evaluation dataset, no sensitive column, ...) is skipped and the reason audited as
    ``evidence_run.default_skipped``, so the version page and the trail say why it is missing.
    """
    version = (
        ModelVersion.objects.select_related("model", "created_by", "created_by_service_account")
        .filter(pk=version_id)
        .first()
    )
    if version is None or version.status != VersionStatus.READY:
        return []
    actor = _author(version)
    requested = []
    for kind in version.model.default_evidence:
        try:
            if actor is None:
                raise ValidationFailed("the version has no author to ask for it")
            requested.append(evidence_request(actor=actor, kind=kind, version=version).run)
        except (ValidationFailed, Conflict, NotFound, Denied) as exc:
            with transaction.atomic():
                audit.record(
                    action="evidence_run.default_skipped",
                    actor=WORKER_DEFAULTS,
                    outcome=Outcome.FAILED,
                    target=version,
                    related=version.model,
                    after={"kind": kind},
                    reason=str(getattr(exc, "detail", exc)),
                )
    return requested
