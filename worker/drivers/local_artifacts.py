"""The local target's copies of approved artifacts: one read-only file per digest, re-hashed when fetched.

A member's ``artifact_uri`` is a ``file://`` path (the local storage folder), an ``s3://`` reference (read
through the storage helpers, which allow only the configured buckets) or a storage key. The bytes are
streamed into a temporary file beside their final name while they are hashed, and kept under their digest only
if the sha256 is the approved one (``DigestMismatch`` otherwise), so a serving process is never started on
other bytes (it hashes the file again itself before loading it).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, urlparse

from apps.deployments.plans import DigestMismatch, DriverError, Member

DIGEST = re.compile(r"^[0-9a-f]{64}$")


def ensure(folder: Path, member: Member) -> Path:
    """The member's artifact in ``folder``, fetched and re-hashed if it is not there yet."""
    path = folder / member.digest
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{member.digest}.{os.getpid()}.{secrets.token_hex(4)}.partial"
    try:
        sha256 = fetch(member.artifact_uri, tmp)
        if sha256 != member.digest:
            raise DigestMismatch(
                f"the artifact of version {member.version} ({member.artifact_uri}) has sha256 {sha256}, "
                f"not the approved digest {member.digest}"
            )
        tmp.chmod(0o444)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def fetch(uri: str, target: Path) -> str:
    """Copy the bytes of a ``file://`` path, an ``s3://`` reference or a storage key to ``target``; their sha256."""
    from django.conf import settings

    from apps.core.storage import TooLarge, copy_bounded
    from worker.fetch import Unfetchable, fetch_rehashed

    limit = int(settings.ASSAY_MAX_UPLOAD_BYTES)
    parsed = urlparse(uri)
    try:
        if parsed.scheme == "file":
            with open(unquote(parsed.path), "rb") as source, open(target, "wb") as out:
                return copy_bounded(source, out, limit=limit)[0]
        reference = parsed.scheme == "s3"
        return fetch_rehashed(uri, is_reference=reference, target=target, what="artifact", limit=limit)[0]
    except FileNotFoundError:
        raise DriverError(f"the artifact {uri} is missing") from None
    except OSError as exc:
        raise DriverError(f"cannot read the artifact {uri}: {exc.strerror or exc}") from None
    except TooLarge:
        raise DriverError(f"the artifact {uri} is larger than {limit} bytes (ASSAY_MAX_UPLOAD_BYTES)") from None
    except Unfetchable as exc:
        raise DriverError(str(exc)) from None


def collect(folder: Path, used: Iterable[str]) -> None:
    """Delete the artifacts in ``folder`` whose digest is not in ``used``."""
    keep = set(used)
    for path in folder.glob("*"):
        if DIGEST.match(path.name) and path.name not in keep:
            path.unlink(missing_ok=True)
