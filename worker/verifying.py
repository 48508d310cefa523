"""Registry verification's engine: the bytes fetched and re-hashed, compared with the registration, loaded.

``artifact_verified`` and ``dataset_verified`` work in a private temporary folder and answer what the
bytes are, or raise ``Rejected`` (the bytes are at fault: the row becomes invalid with that reason).
Errors of the infrastructure (storage unreachable) propagate, so the job fails and the row stays
pending, to be verified again. Nothing is ever unpickled (``worker.engines.loaders``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from apps.core.errors import DomainError
from apps.registry import sniffing
from apps.registry.models import Dataset, ModelVersion
from worker.compute import _throttled
from worker.engines import loaders
from worker.fetch import Unfetchable, fetch_rehashed

Report = Callable[[int, str], None]


class Rejected(Exception):
    """The bytes are at fault: the row becomes invalid with this reason (and the digest and size fetched, if any)."""

    def __init__(self, reason: str, *, sha256: str = "", size: int | None = None) -> None:
        super().__init__(reason)
        self.sha256, self.size = sha256, size


@dataclass
class Verified:
    """What verified bytes are: their digest and size, and what loading them found."""

    sha256: str
    size: int
    details: dict = field(default_factory=dict)
    row_count: int | None = None
    columns: list = field(default_factory=list)


def _fetched(uri: str, *, is_reference: bool, what: str, target: Path, report: Report, size_hint: int | None):
    """The object copied to ``target`` and re-hashed, bounded by the upload size limit; Rejected when unfetchable."""
    try:
        return fetch_rehashed(
            uri,
            is_reference=is_reference,
            target=target,
            what=what,
            limit=int(settings.ASSAY_MAX_UPLOAD_BYTES),
            size_hint=size_hint,
            progress=_throttled(report, 5, 25, "fetching"),
        )
    except Unfetchable as exc:
        raise Rejected(str(exc))


def _matches_registration(row: ModelVersion | Dataset, is_reference: bool, sha256: str, size: int) -> None:
    """The fetched bytes are the registered ones: digest and size of an upload, the digest given with a reference."""
    if not is_reference:
        if sha256 != row.sha256 or size != row.size:
            raise Rejected(
                f"the stored bytes no longer match the registration (sha256 {sha256}, {size} bytes; "
                f"registered {row.sha256}, {row.size} bytes)",
                sha256=sha256,
                size=size,
            )
    elif row.sha256 and sha256 != row.sha256:
        raise Rejected(
            f"the referenced object's sha256 is {sha256}, not the expected {row.sha256}", sha256=sha256, size=size
        )


def artifact_verified(version: ModelVersion, report: Report) -> Verified:
    """Fetch the version's artifact, check digest, size and format, then load it for real."""
    what = "referenced object" if version.artifact_is_reference else "stored artifact"
    with tempfile.TemporaryDirectory(prefix="assay-verify-") as folder:
        path = Path(folder) / "artifact"
        sha256, size = _fetched(
            version.artifact_uri,
            is_reference=version.artifact_is_reference,
            what=what,
            target=path,
            report=report,
            size_hint=version.size,
        )
        report(30, "checking the digest and format")
        _matches_registration(version, version.artifact_is_reference, sha256, size)
        try:
            with open(path, "rb") as fh:
                sniffing.check_model(fh, size, version.format)
            report(40, f"loading the {version.format} artifact")
            details = loaders.load_artifact(path, version.format)
        except (DomainError, loaders.LoadError) as exc:
            raise Rejected(str(getattr(exc, "detail", exc)), sha256=sha256, size=size)
    return Verified(sha256=sha256, size=size, details=details)


def dataset_verified(dataset: Dataset, report: Report) -> Verified:
    """Fetch the dataset, check digest, size and format, read every row with pyarrow and the declared columns."""
    what = "referenced object" if dataset.is_reference else "stored dataset"
    with tempfile.TemporaryDirectory(prefix="assay-verify-") as folder:
        path = Path(folder) / "dataset"
        sha256, size = _fetched(
            dataset.uri,
            is_reference=dataset.is_reference,
            what=what,
            target=path,
            report=report,
            size_hint=dataset.size,
        )
        report(20, "checking the digest and format")
        _matches_registration(dataset, dataset.is_reference, sha256, size)
        try:
            with open(path, "rb") as fh:
                sniffing.detect_dataset(fh, size, dataset.format)
            report(25, "reading rows")
            stats = loaders.read_dataset(path, dataset.format, progress=_throttled(report, 25, 90, "reading rows"))
        except (DomainError, loaders.LoadError) as exc:
            raise Rejected(str(getattr(exc, "detail", exc)), sha256=sha256, size=size)
        missing = [c["name"] for c in dataset.schema if c["name"] not in set(stats.columns)]
        if missing:
            raise Rejected(f"declared column(s) missing from the file: {', '.join(missing)}", sha256=sha256, size=size)
    return Verified(sha256=sha256, size=size, row_count=stats.row_count, columns=stats.columns)
