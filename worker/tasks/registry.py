"""Registry jobs: verify uploaded or referenced artifacts and datasets.

Each handler loads its row by id, leaves it alone unless it is still pending
verification (so running a job twice is a no-op), copies the bytes to a
private temporary folder while re-hashing them (bounded by the upload size
limit), compares digest and size, loads the artifact or reads the dataset for
real (``worker.engines.loaders``; nothing is ever unpickled), and hands the
outcome to ``apps.registry.verification``. Errors that say something about the
bytes mark the row invalid; errors of the infrastructure (storage unreachable)
fail the job and leave the row pending, to be verified again.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from celery import shared_task
from django.conf import settings

from apps.core.errors import DomainError
from apps.core.storage import ObjectMissing, TooLarge, copy_bounded, get_storage, open_reference
from apps.jobs.models import Job
from apps.registry import sniffing, verification
from apps.registry.choices import ArtifactFormat, DatasetStatus, VersionStatus
from apps.registry.models import Dataset, ModelVersion
from apps.registry.services import VERIFY_DATASET, VERIFY_VERSION
from worker.engines import loaders
from worker.runner import JobFailed, handles

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
    with tempfile.TemporaryDirectory(prefix="assay-verify-") as folder:
        path = Path(folder) / "artifact"
        digest, size = "", None
        try:
            digest, size = _fetch(
                version.artifact_uri,
                is_reference=version.artifact_is_reference,
                target=path,
                report=report,
                size_hint=version.size,
            )
            report(30, "checking the digest and format")
            _check_version_bytes(version, path, digest, size)
            report(40, f"loading the {version.format} artifact")
            details = loaders.load_artifact(path, version.format)
        except (Rejected, loaders.LoadError) as exc:
            verification.version_mark_invalid(version_id=version.pk, reason=str(exc), sha256=digest, size=size)
            return {"status": VersionStatus.INVALID, "reason": str(exc)}
    report(90, "recording the result")
    status = verification.version_mark_ready(
        version_id=version.pk, sha256=digest, size=size, details={"loaded": details}
    )
    return {"status": status or "unchanged", "sha256": digest, "size": size, "details": details}


@handles(VERIFY_DATASET)
def verify_dataset(job: Job, report: Report) -> dict:
    """Verify one dataset: digest and size, then read every row with pyarrow and check the declared columns."""
    dataset = Dataset.objects.filter(pk=job.params["dataset_id"]).first()
    if dataset is None:
        raise JobFailed("the dataset no longer exists")
    if dataset.status != DatasetStatus.PENDING_VERIFICATION:
        return {"skipped": f"dataset is already {dataset.status}"}

    report(5, "fetching the dataset")
    with tempfile.TemporaryDirectory(prefix="assay-verify-") as folder:
        path = Path(folder) / "dataset"
        digest, size = "", None
        try:
            digest, size = _fetch(
                dataset.uri, is_reference=dataset.is_reference, target=path, report=report, size_hint=dataset.size
            )
            report(20, "checking the digest and format")
            _check_dataset_bytes(dataset, path, digest, size)
            report(25, "reading rows")
            stats = loaders.read_dataset(path, dataset.format, progress=_throttled(report, 25, 90, "reading rows"))
            missing = [c["name"] for c in dataset.schema if c["name"] not in set(stats.columns)]
            if missing:
                raise Rejected(f"declared column(s) missing from the file: {', '.join(missing)}")
        except (Rejected, loaders.LoadError) as exc:
            verification.dataset_mark_invalid(dataset_id=dataset.pk, reason=str(exc), sha256=digest, size=size)
            return {"status": DatasetStatus.INVALID, "reason": str(exc)}
    report(95, "recording the result")
    verification.dataset_mark_ready(dataset_id=dataset.pk, sha256=digest, size=size, row_count=stats.row_count)
    return {"status": DatasetStatus.READY, "row_count": stats.row_count, "columns": stats.columns}


@shared_task(name="registry.cleanup_uploads")
def cleanup_uploads() -> int:
    """Remove spooled uploads and half-written artifacts left by killed web processes (periodic; idempotent)."""
    from apps.registry.cleanup import uploads_cleanup

    return len(uploads_cleanup().removed)
