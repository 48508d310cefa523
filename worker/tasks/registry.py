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

Report = Callable[[int, str], None]


class Rejected(Exception):
    """The bytes are at fault: the row becomes invalid with this reason."""


def _fetch(uri: str, *, is_reference: bool, target: Path, report: Report, size_hint: int | None) -> tuple[str, int]:
    """Copy stored or referenced bytes to ``target``; return their SHA-256 and size. Reports as it goes."""
    limit = int(settings.ASSAY_MAX_UPLOAD_BYTES)
    try:
        source = open_reference(uri) if is_reference else get_storage().open(uri)
    except ObjectMissing as exc:
        raise Rejected(f"the {'referenced object' if is_reference else 'stored artifact'} is missing: {exc}")
    except DomainError as exc:  # a reference no longer allowed (the allowed buckets changed)
        raise Rejected(str(exc.detail))
    except Exception as exc:
        if _is_permanent_s3_error(exc):
            raise Rejected(f"cannot read {uri}: {exc}")
        raise
    try:
        progress = _throttled(report, 5, 25, "fetching")
        total = max(1, size_hint or limit)
        with open(target, "wb") as out:
            return copy_bounded(source, out, limit=limit, progress=lambda done: progress(min(1.0, done / total)))
    except TooLarge:
        raise Rejected(f"the object is larger than the limit of {limit} bytes (ASSAY_MAX_UPLOAD_BYTES)")
    finally:
        source.close()


def _is_permanent_s3_error(exc: Exception) -> bool:
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    return code in {"AccessDenied", "403", "NoSuchBucket", "InvalidObjectState", "AllAccessDisabled"}


def _throttled(report: Report, low: int, high: int, message: str) -> Callable[[float], None]:
    """Map a 0..1 fraction onto low..high percent, reporting (and so renewing the lease) at most twice a second."""
    last = [time.monotonic()]

    def progress(fraction: float) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5:
            last[0] = now
            report(low + int((high - low) * fraction), message)

    return progress


# ---------------------------------------------------------------------------------------------
# Versions


def _check_version_bytes(version: ModelVersion, path: Path, digest: str, size: int) -> str:
    """Compare what was fetched with what was registered; return the format the bytes hold."""
    if not version.artifact_is_reference:
        if digest != version.sha256 or size != version.size:
            raise Rejected(
                f"the stored bytes no longer match the registration (sha256 {digest}, {size} bytes; "
                f"registered {version.sha256}, {version.size} bytes)"
            )
    elif version.sha256 and digest != version.sha256:
        raise Rejected(f"the referenced object's sha256 is {digest}, not the expected {version.sha256}")
    try:
        with open(path, "rb") as fh:
            return sniffing.check_model(fh, size, version.format)
    except DomainError as exc:
        raise Rejected(str(exc.detail))


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


# ---------------------------------------------------------------------------------------------
# Datasets


def _check_dataset_bytes(dataset: Dataset, path: Path, digest: str, size: int) -> None:
    if not dataset.is_reference:
        if digest != dataset.sha256 or size != dataset.size:
            raise Rejected(
                f"the stored bytes no longer match the registration (sha256 {digest}, {size} bytes; "
                f"registered {dataset.sha256}, {dataset.size} bytes)"
            )
    elif dataset.sha256 and digest != dataset.sha256:
        raise Rejected(f"the referenced object's sha256 is {digest}, not the expected {dataset.sha256}")
    try:
        with open(path, "rb") as fh:
            sniffing.detect_dataset(fh, size, dataset.format)
    except DomainError as exc:
        raise Rejected(str(exc.detail))


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
