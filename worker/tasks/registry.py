"""Registry jobs: verify uploaded or referenced artifacts and datasets.

Each handler loads its row by id, leaves it alone unless it is still pending
verification (so running a job twice is a no-op), has the engine
(``worker.verifying``) fetch, re-hash, compare and load the bytes, and hands the
outcome to ``apps.registry.verification``. Bytes at fault mark the row invalid;
errors of the infrastructure (storage unreachable) fail the job and leave the
row pending, to be verified again.
"""

from __future__ import annotations

from celery import shared_task

from apps.jobs.models import Job
from apps.registry import verification
from apps.registry.choices import ArtifactFormat, DatasetStatus, VersionStatus
from apps.registry.models import Dataset, ModelVersion
from apps.registry.services import VERIFY_DATASET, VERIFY_VERSION
from worker import verifying
from worker.runner import JobFailed, handles
from worker.verifying import Rejected, Report


@handles(VERIFY_VERSION)
def verify_version(job: Job, report: Report) -> dict:
    """Verify one model version: digest and size, then load the artifact for real."""
    version = ModelVersion.objects.select_related("evaluation_dataset").filter(pk=job.params["version_id"]).first()
    if version is None:
        raise JobFailed("the version no longer exists")
    if version.status != VersionStatus.PENDING_VERIFICATION:
        return {"skipped": f"version is already {version.status}"}
    if version.format == ArtifactFormat.PREDICTIONS_ONLY:
        status = verification.settle_predictions_version(version, version.evaluation_dataset)
        return {"status": status or "waiting for the evaluation dataset's verification"}

    report(5, "fetching the artifact")
    try:
        verified = verifying.artifact_verified(version, report)
    except Rejected as exc:
        verification.version_mark_invalid(version_id=version.pk, reason=str(exc), sha256=exc.sha256, size=exc.size)
        return {"status": VersionStatus.INVALID, "reason": str(exc)}
    report(90, "recording the result")
    status = verification.version_mark_ready(
        version_id=version.pk, sha256=verified.sha256, size=verified.size, details={"loaded": verified.details}
    )
    return {
        "status": status or "unchanged",
        "sha256": verified.sha256,
        "size": verified.size,
        "details": verified.details,
    }


@handles(VERIFY_DATASET)
def verify_dataset(job: Job, report: Report) -> dict:
    """Verify one dataset: digest and size, then read every row with pyarrow and check the declared columns."""
    dataset = Dataset.objects.filter(pk=job.params["dataset_id"]).first()
    if dataset is None:
        raise JobFailed("the dataset no longer exists")
    if dataset.status != DatasetStatus.PENDING_VERIFICATION:
        return {"skipped": f"dataset is already {dataset.status}"}

    report(5, "fetching the dataset")
    try:
        verified = verifying.dataset_verified(dataset, report)
    except Rejected as exc:
        verification.dataset_mark_invalid(dataset_id=dataset.pk, reason=str(exc), sha256=exc.sha256, size=exc.size)
        return {"status": DatasetStatus.INVALID, "reason": str(exc)}
    report(95, "recording the result")
    verification.dataset_mark_ready(
        dataset_id=dataset.pk, sha256=verified.sha256, size=verified.size, row_count=verified.row_count
    )
    return {"status": DatasetStatus.READY, "row_count": verified.row_count, "columns": verified.columns}


@shared_task(name="registry.cleanup_uploads")
def cleanup_uploads() -> int:
    """Remove spooled uploads and half-written artifacts left by killed web processes (periodic; idempotent)."""
    from apps.registry.cleanup import uploads_cleanup

    return len(uploads_cleanup().removed)
