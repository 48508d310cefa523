"""The report store: where scheduled reports are written for keeping, outside Assay's own storage.

``ASSAY_REPORT_STORE_URL`` is a folder (``file:///...``) or an S3 bucket and prefix (``s3://bucket/prefix``).
Each report's files go under ``<kind>/<date>-<report id>/``; nothing is ever overwritten (a folder write
refuses an existing file). On S3, when the bucket has Object Lock enabled, each object is written in
**compliance mode** and retained for ``ASSAY_REPORT_RETENTION_DAYS`` (default seven years, as SOX asks):
nobody, the bucket's owner included, can delete or overwrite it before then. A bucket without Object Lock
gets plain objects, and the report records which it was.
"""

from __future__ import annotations

import io
import os
import shutil
from datetime import timedelta
from pathlib import Path
from typing import IO
from urllib.parse import urlparse

from django.conf import settings
from django.utils import timezone


def _folder(report) -> str:
    return f"{report.kind}/{report.created_at:%Y-%m-%d}-{report.public_id}"


def store_files(report, files: dict[str, tuple[str, bytes | IO[bytes]]]) -> dict[str, dict]:
    """Write ``files`` (format -> (name, bytes or a file)); return format -> ``{"uri", "object_lock"}``."""
    url = urlparse(settings.ASSAY_REPORT_STORE_URL)
    if url.scheme == "file":
        return _to_folder(Path(url.path) / _folder(report), files)
    if url.scheme == "s3":
        return _to_s3(url.netloc, url.path.strip("/"), _folder(report), files)
    raise ValueError(f"ASSAY_REPORT_STORE_URL scheme {url.scheme!r} is not supported (file:// or s3://)")


def _stream(data: bytes | IO[bytes]) -> IO[bytes]:
    stream = io.BytesIO(data) if isinstance(data, bytes) else data
    stream.seek(0)
    return stream


def _to_folder(root: Path, files: dict[str, tuple[str, bytes | IO[bytes]]]) -> dict[str, dict]:
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for fmt, (name, data) in files.items():
        path = root / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)  # never overwrite a kept report
        with os.fdopen(fd, "wb") as fh:
            shutil.copyfileobj(_stream(data), fh)
        out[fmt] = {"uri": path.as_uri(), "object_lock": False}
    return out


def _object_lock(client, bucket: str) -> bool:
    try:
        config = client.get_object_lock_configuration(Bucket=bucket)
    except Exception:  # no configuration (or a server without the API): plain objects
        return False
    return config.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"


def _to_s3(bucket: str, prefix: str, folder: str, files: dict[str, tuple[str, bytes | IO[bytes]]]) -> dict[str, dict]:
    from apps.core.storage import s3_client

    client = s3_client()
    locked = _object_lock(client, bucket)
    until = timezone.now() + timedelta(days=settings.ASSAY_REPORT_RETENTION_DAYS)
    out = {}
    for fmt, (name, data) in files.items():
        key = "/".join(p for p in (prefix, folder, name) if p)
        extra = {"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": until} if locked else {}
        client.put_object(Bucket=bucket, Key=key, Body=_stream(data), **extra)
        out[fmt] = {"uri": f"s3://{bucket}/{key}", "object_lock": locked}
    return out
