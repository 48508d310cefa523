"""State changes the verification worker makes: a version or dataset becomes ready or invalid.

Each runs in one transaction under a row lock, acts only on a row still
``pending_verification`` (so a second run is a no-op), and writes its audit
event (``model_version.verified`` / ``model_version.invalidated``,
``dataset.verified`` / ``dataset.invalidated``) in that transaction. An invalid
upload's stored bytes are deleted after commit; referenced objects are never
touched. The actor is the system's verifier, not the person who registered.
"""

from __future__ import annotations

from django.db import transaction

from apps.audit import services as audit
from apps.audit.choices import Outcome
from apps.core.principals import Principal
from apps.core.storage import get_storage
from apps.jobs import events

from .choices import ArtifactFormat, ColumnRole, DatasetStatus, VersionStatus
from .models import Dataset, ModelVersion, RegisteredModel

VERIFIER = Principal.system("registry-verifier")


def _delete_after_commit(key: str) -> None:
    def delete() -> None:
        try:
            get_storage().delete(key)
        except Exception:
            import logging

            logging.getLogger(__name__).exception("could not delete the bytes of an invalid upload (%s)", key)

    transaction.on_commit(delete)


def _locked_pending_version(version_id: int) -> ModelVersion | None:
    version = ModelVersion.objects.select_for_update().select_related("model").filter(pk=version_id).first()
    if version is None or version.status != VersionStatus.PENDING_VERIFICATION:
        return None
    return version


@transaction.atomic
def version_mark_invalid(*, version_id: int, reason: str, sha256: str = "", size: int | None = None) -> bool:
    """Mark a pending version invalid with its reason; delete an upload's bytes. False if it was not pending."""
    version = _locked_pending_version(version_id)
    if version is None:
        return False
    changed = ["status", "status_reason", "updated_at"]
    if version.artifact_is_reference and sha256 and not version.sha256:
        version.sha256 = sha256
        changed.append("sha256")
    if version.artifact_is_reference and size is not None and version.size is None:
        version.size = size
        changed.append("size")
    version.status = VersionStatus.INVALID
    version.status_reason = reason[:5000]
    version.save(update_fields=changed)
    audit.record(
        action="model_version.invalidated",
        actor=VERIFIER,
        outcome=Outcome.FAILED,
        target=version,
        related=version.model,
        before={"status": VersionStatus.PENDING_VERIFICATION},
        after={"status": VersionStatus.INVALID},
        reason=version.status_reason,
        artifact_sha256=version.sha256 or sha256,
    )
    if version.artifact_uri and not version.artifact_is_reference:
        _delete_after_commit(version.artifact_uri)
    return True


@transaction.atomic
def version_mark_ready(
    *, version_id: int, sha256: str = "", size: int | None = None, details: dict | None = None
) -> str:
    """Mark a pending version ready; for a reference, record the digest and size the worker measured.

    A reference whose digest another live version of the same model already has
    becomes invalid instead, naming that version. Returns the resulting status
    (or "" when the version was no longer pending).
    """
    version = ModelVersion.objects.filter(pk=version_id).values("model_id").first()
    if version is None:
        return ""
    # Lock the model first, as version_create does, so digests are compared in a stable order.
    RegisteredModel.objects.select_for_update().filter(pk=version["model_id"]).first()
    version = _locked_pending_version(version_id)
    if version is None:
        return ""
    changed = ["status", "status_reason", "updated_at"]
    if version.artifact_is_reference:
        duplicate = (
            ModelVersion.objects.filter(model_id=version.model_id, sha256=sha256)
            .exclude(pk=version.pk)
            .exclude(status=VersionStatus.INVALID)
            .values_list("number", flat=True)
            .first()
        )
        if duplicate is not None:
            version_mark_invalid(
                version_id=version.pk,
                reason=f"The referenced artifact (sha256 {sha256}) is already version {duplicate} of this model.",
                sha256=sha256,
                size=size,
            )
            return VersionStatus.INVALID
        version.sha256 = sha256
        version.size = size
        changed += ["sha256", "size"]
    version.status = VersionStatus.READY
    version.status_reason = ""
    version.save(update_fields=changed)
    audit.record(
        action="model_version.verified",
        actor=VERIFIER,
        target=version,
        related=version.model,
        before={"status": VersionStatus.PENDING_VERIFICATION},
        after={"status": VersionStatus.READY, "sha256": version.sha256, "size": version.size, **(details or {})},
        artifact_sha256=version.sha256,
    )
    events.publish(
        "model_version.verified",
        payload={"version_id": version.pk, "model_id": version.model_id, "sha256": version.sha256},
        target=version,
    )
    return VersionStatus.READY


@transaction.atomic
def dataset_mark_invalid(*, dataset_id: int, reason: str, sha256: str = "", size: int | None = None) -> bool:
    """Mark a pending dataset invalid; delete an upload's bytes; settle versions that waited on it."""
    dataset = Dataset.objects.select_for_update().filter(pk=dataset_id).first()
    if dataset is None or dataset.status != DatasetStatus.PENDING_VERIFICATION:
        return False
    changed = ["status", "status_reason", "updated_at"]
    if dataset.is_reference and sha256 and not dataset.sha256:
        dataset.sha256, dataset.size = sha256, size
        changed += ["sha256", "size"]
    dataset.status = DatasetStatus.INVALID
    dataset.status_reason = reason[:5000]
    dataset.save(update_fields=changed)
    audit.record(
        action="dataset.invalidated",
        actor=VERIFIER,
        outcome=Outcome.FAILED,
        target=dataset,
        before={"status": DatasetStatus.PENDING_VERIFICATION},
        after={"status": DatasetStatus.INVALID},
        reason=dataset.status_reason,
        artifact_sha256=dataset.sha256,
    )
    if dataset.uri and not dataset.is_reference:
        _delete_after_commit(dataset.uri)
    settle_predictions_versions(dataset)
    return True


@transaction.atomic
def dataset_mark_ready(*, dataset_id: int, sha256: str, size: int, row_count: int) -> bool:
    """Mark a pending dataset ready with its row count (and, for a reference, digest and size)."""
    dataset = Dataset.objects.select_for_update().filter(pk=dataset_id).first()
    if dataset is None or dataset.status != DatasetStatus.PENDING_VERIFICATION:
        return False
    changed = ["status", "status_reason", "row_count", "updated_at"]
    if dataset.is_reference:
        dataset.sha256, dataset.size = sha256, size
        changed += ["sha256", "size"]
    dataset.status = DatasetStatus.READY
    dataset.status_reason = ""
    dataset.row_count = row_count
    dataset.save(update_fields=changed)
    audit.record(
        action="dataset.verified",
        actor=VERIFIER,
        target=dataset,
        before={"status": DatasetStatus.PENDING_VERIFICATION},
        after={"status": DatasetStatus.READY, "sha256": dataset.sha256, "size": dataset.size, "row_count": row_count},
        artifact_sha256=dataset.sha256,
    )
    settle_predictions_versions(dataset)
    return True


def prediction_columns(dataset: Dataset) -> list[str]:
    return [c["name"] for c in dataset.schema if c.get("role") == ColumnRole.PREDICTION]


def settle_predictions_version(version: ModelVersion, dataset: Dataset) -> str:
    """Decide a pending predictions-only version from its evaluation dataset's status ("" while it is pending)."""
    if dataset.status == DatasetStatus.READY:
        if not prediction_columns(dataset):
            version_mark_invalid(
                version_id=version.pk, reason=f"Evaluation dataset {dataset.pk} has no column with role 'prediction'."
            )
            return VersionStatus.INVALID
        return version_mark_ready(version_id=version.pk, details={"evaluation_dataset": dataset.pk})
    if dataset.status == DatasetStatus.INVALID:
        version_mark_invalid(
            version_id=version.pk, reason=f"Evaluation dataset {dataset.pk} is invalid: {dataset.status_reason}"
        )
        return VersionStatus.INVALID
    return ""


def settle_predictions_versions(dataset: Dataset) -> None:
    """Once a dataset is verified, decide the predictions-only versions that were waiting on it."""
    waiting = ModelVersion.objects.filter(
        evaluation_dataset=dataset,
        format=ArtifactFormat.PREDICTIONS_ONLY,
        status=VersionStatus.PENDING_VERIFICATION,
    )
    for version in waiting:
        settle_predictions_version(version, dataset)
