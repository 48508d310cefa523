"""Writes for evidence: request a run (or reuse an equal one).

``evidence_request`` checks ``evidence.request`` on the subject (a version, or a
dataset), the kind, the subject's readiness and the kind's parameters, then
either returns an existing run with the same inputs and parameters (audited
``evidence_run.reused``) or creates the run and its job in one transaction
(audited ``evidence_run.requested``; the job is sent to a worker after commit).
The worker's state changes are in ``apps.evidence.runs``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from apps.audit import services as audit
from apps.core.errors import Conflict, NotFound, ValidationFailed
from apps.core.principals import Principal, PrincipalKind
from apps.jobs import services as jobs
from apps.rbac import services as rbac
from apps.registry.choices import ArtifactFormat, ColumnRole, DatasetStatus, VersionStatus
from apps.registry.models import Dataset, ModelVersion

from .choices import REUSABLE, EvidenceKind
from .models import EvidenceRun

RUN_JOB = "evidence.run"
AVAILABLE_KINDS: tuple[str, ...] = (EvidenceKind.BIAS.value,)
BIAS_PARAMETERS = ("sensitive_columns", "label_column", "prediction_column", "positive_label", "reference_groups")


class SubjectNotReady(Conflict):
    """The version or dataset is not verified (pending, invalid or retired): nothing to compute evidence on (409)."""

    code = "subject_not_ready"
    title = "Subject not ready"


@dataclass(frozen=True)
class EvidenceRequested:
    """What ``evidence_request`` did: the run, and whether it is an earlier run reused."""

    run: EvidenceRun
    reused: bool


def _requester(actor: Principal) -> dict:
    """requested_by is the accountable person (a service account's owner); plus the service account."""
    if actor.kind == PrincipalKind.SERVICE_ACCOUNT:
        return {"requested_by_id": actor.owner_user_id, "requested_by_service_account_id": actor.id}
    if actor.kind == PrincipalKind.USER:
        return {"requested_by_id": actor.id, "requested_by_service_account_id": None}
    return {"requested_by_id": None, "requested_by_service_account_id": None}


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


def _refuse(message: str, field: str = "parameters") -> ValidationFailed:
    return ValidationFailed(message, errors={field: [message]})


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _scores_the_model(parameters: dict, dataset: Dataset, version: ModelVersion | None, by_role: dict) -> bool:
    """True when the predictions are to come from scoring the version's model; 400 when they can come from nowhere."""
    if parameters.get("prediction_column") not in (None, "") or by_role.get(ColumnRole.PREDICTION):
        return False
    if version is None:
        raise _refuse(
            f"Dataset {dataset.pk} has no prediction column (role prediction); name one with prediction_column, "
            "or ask for the report on a model version, whose model is then scored on the dataset's feature columns."
        )
    if version.format == ArtifactFormat.PREDICTIONS_ONLY:
        raise _refuse(
            f"Version {version.number} of {version.model.name} holds predictions only, and dataset {dataset.pk} has "
            "no prediction column (role prediction); name one with prediction_column or use a dataset that has one."
        )
    if not by_role.get(ColumnRole.FEATURE):
        raise _refuse(
            f"Dataset {dataset.pk} has neither a prediction column (role prediction) nor feature columns "
            f"(role feature) to score version {version.number} of {version.model.name} on; "
            "declare its feature columns or name a prediction column with prediction_column."
        )
    return True


def bias_parameters(parameters: dict, dataset: Dataset, version: ModelVersion | None = None) -> dict:
    """The bias run's parameters, defaults filled from the dataset's column roles; 400 naming what is wrong.

    Without a prediction column (named or of role prediction), a version with a model artifact
    is scored on the dataset's feature columns (in schema order): the parameters then hold
    ``"predictions": "model"`` and ``feature_columns`` instead of ``prediction_column``.
    """
    unknown = sorted(set(parameters) - set(BIAS_PARAMETERS))
    if unknown:
        raise _refuse(f"Unknown parameter(s) for bias: {', '.join(unknown)}; known: {', '.join(BIAS_PARAMETERS)}.")
    columns = [c.get("name") for c in dataset.schema]
    by_role: dict[str, list[str]] = {}
    for column in dataset.schema:
        by_role.setdefault(column.get("role", ""), []).append(column.get("name"))

    def column(name: str, role: str, missing: str) -> str:
        value = parameters.get(name)
        if value in (None, ""):
            if not by_role.get(role):
                raise _refuse(missing)
            return by_role[role][0]
        if not isinstance(value, str):
            raise _refuse(f"{name}: expected a column name.")
        return value

    label = column(
        "label_column",
        ColumnRole.LABEL,
        f"Dataset {dataset.pk} has no column with role label; name the label column with label_column.",
    )
    scored = _scores_the_model(parameters, dataset, version, by_role)
    features = list(by_role.get(ColumnRole.FEATURE, [])) if scored else []
    prediction = (
        None
        if scored
        else column("prediction_column", ColumnRole.PREDICTION, f"Dataset {dataset.pk} has no prediction column.")
    )
    sensitive = parameters.get("sensitive_columns")
    if sensitive in (None, []):
        sensitive = by_role.get(ColumnRole.SENSITIVE, [])
        if not sensitive:
            raise _refuse(f"Dataset {dataset.pk} has no column with role sensitive; name them with sensitive_columns.")
    if isinstance(sensitive, str):
        sensitive = [sensitive]
    if not isinstance(sensitive, list) or not all(isinstance(s, str) and s for s in sensitive):
        raise _refuse("sensitive_columns: expected a list of column names.")
    sensitive = list(dict.fromkeys(sensitive))
    needed = [label, prediction, *sensitive] if prediction is not None else [label, *sensitive]
    missing = [name for name in needed if name not in columns]
    if missing:
        raise _refuse(
            f"No column named {', '.join(repr(m) for m in dict.fromkeys(missing))} in dataset {dataset.pk} "
            f"(columns: {', '.join(columns) or 'none declared'})."
        )
    positive = parameters.get("positive_label")
    if not _is_scalar(positive):
        raise _refuse("positive_label: expected a single value (text, number or boolean).")
    reference = parameters.get("reference_groups") or {}
    if not isinstance(reference, dict) or not all(_is_scalar(v) for v in reference.values()):
        raise _refuse('reference_groups: expected an object of sensitive column -> group label, e.g. {"sex": "F"}.')
    outside = [name for name in reference if name not in sensitive]
    if outside:
        raise _refuse(f"reference_groups names column(s) that are not sensitive columns: {', '.join(outside)}.")
    result = {
        "sensitive_columns": sensitive,
        "label_column": label,
        "prediction_column": prediction,
        "positive_label": positive,
        "reference_groups": {name: reference[name] for name in sensitive if name in reference},
    }
    if scored:
        del result["prediction_column"]
        result.update(predictions="model", feature_columns=features)
    return result


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
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise _refuse("parameters: expected an object.")
    parameters = bias_parameters(parameters, dataset, subject_version)

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
