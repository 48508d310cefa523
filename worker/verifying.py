"""Registry verification's engine: the bytes fetched and re-hashed, compared with the registration, loaded."""

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
