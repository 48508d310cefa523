"""One way a worker gets stored bytes: streamed into a local file and re-hashed as they arrive.

Verification (``worker.verifying``) and evidence runs (``worker.evidence``) both work on a private
copy of an artifact or dataset, never on the storage object itself, and both must know that the
copy is the bytes whose digest was recorded. ``fetch_rehashed`` does that in one pass.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from apps.core.errors import DomainError
from apps.core.storage import ObjectMissing, TooLarge, copy_bounded, get_storage, open_reference

# S3 answers that will not change by retrying: the object is unreadable for good.
PERMANENT_S3_ERRORS = frozenset({"AccessDenied", "403", "NoSuchBucket", "InvalidObjectState", "AllAccessDisabled"})


class Unfetchable(Exception):
    """The object cannot give the bytes asked for (missing, refused, too large, changed); the message says why."""


class DigestMismatch(Unfetchable):
    """The fetched bytes are not the ones expected: their ``sha256`` is not ``expected``."""

    def __init__(self, what: str, sha256: str, expected: str, size: int) -> None:
        super().__init__(f"the {what}'s sha256 is {sha256}, not the expected {expected}")
        self.what, self.sha256, self.expected, self.size = what, sha256, expected, size


def _permanent(exc: Exception) -> bool:
    response = getattr(exc, "response", None)
    code = str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""
    return code in PERMANENT_S3_ERRORS


def fetch_rehashed(
    uri: str,
    *,
    is_reference: bool,
    target: Path,
    what: str,
    expected_sha256: str = "",
    limit: int | None = None,
    size_hint: int | None = None,
    progress: Callable[[float], None] | None = None,
) -> tuple[str, int]:
    """Stream a stored object (or an ``s3://`` reference) into ``target``, hashing it; its (sha256, size).

    ``what`` names the object in messages ("stored artifact", "dataset"). ``progress`` gets the
    fraction done (of ``size_hint``, else of ``limit``), after each chunk. Raises ``Unfetchable``
    when the object is missing, the reference is no longer allowed, the storage refuses it for good,
    it passes ``limit`` bytes, or (``DigestMismatch``) its sha256 is not ``expected_sha256``. Any
    other error (storage unreachable) propagates: it says nothing about the bytes, so the job fails
    and is tried again.
    """
    try:
        source = open_reference(uri) if is_reference else get_storage().open(uri)
    except ObjectMissing as exc:
        raise Unfetchable(f"the {what} is missing: {exc}")
    except DomainError as exc:  # a reference no longer allowed (the allowed buckets changed)
        raise Unfetchable(str(exc.detail))
    except Exception as exc:
        if _permanent(exc):
            raise Unfetchable(f"cannot read {uri}: {exc}")
        raise
    total = max(1, size_hint or limit or 1)
    report = (lambda done: progress(min(1.0, done / total))) if progress is not None else None
    try:
        with open(target, "wb") as out:
            sha256, size = copy_bounded(source, out, limit=limit, progress=report)
    except TooLarge:
        raise Unfetchable(f"the {what} is larger than the limit of {limit} bytes (ASSAY_MAX_UPLOAD_BYTES)")
    finally:
        source.close()
    if expected_sha256 and sha256 != expected_sha256:
        raise DigestMismatch(what, sha256, expected_sha256, size)
    return sha256, size
