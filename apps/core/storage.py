"""Artifact and dataset storage: one interface, a local folder or an S3 bucket.

``ASSAY_STORAGE_URL`` chooses the backend: ``file:///abs/folder`` or
``s3://bucket/prefix`` (``AWS_ENDPOINT_URL`` points boto3 at any S3-compatible
server: Ceph RADOS gateway, MinIO, ...). Keys are generated here
(``artifacts/<uuid>``, ``datasets/<uuid>``, ``evidence/<uuid>`` for result files) and never hold user input; a
partially written object is never visible under its key (the folder backend
writes to a temporary name and renames, S3 makes an object visible only when
its upload completes).

References (``s3://bucket/key`` given by a user instead of an upload) are read
only from the storage bucket and the buckets in ``ASSAY_ALLOWED_S3_BUCKETS``;
every other scheme (``http(s)://``, ``file://``, ...) is refused before
anything is fetched, so the control plane never requests arbitrary hosts.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol
from urllib.parse import urlparse

from django.conf import settings

from apps.core.errors import ValidationFailed

CHUNK = 1024 * 1024
KINDS = ("artifacts", "datasets", "evidence", "reports")
_KEY_RE = re.compile(r"^(artifacts|datasets|evidence|reports)/[0-9a-f]{32}$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


class StorageError(Exception):
    """Storage could not complete an operation (missing object, unreachable server, ...)."""


class ObjectMissing(StorageError):
    """No object under that key."""


class TooLarge(StorageError):
    """A stream went past the size limit while being read."""


@dataclass(frozen=True)
class Stored:
    """What ``save`` wrote: the generated key, the byte count and the SHA-256 of the bytes."""

    key: str
    size: int
    sha256: str


def new_key(kind: str) -> str:
    """A fresh key for a stored object; never derived from anything a user sent."""
    if kind not in KINDS:
        raise ValueError(f"unknown storage kind {kind!r}")
    return f"{kind}/{uuid.uuid4().hex}"


def check_key(key: str) -> str:
    """Refuse anything that is not a key this module generated (no paths, no traversal)."""
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise StorageError(f"not a storage key: {key!r}")
    return key


class _HashingReader:
    """Wraps a stream: hashes and counts what passes through; refuses more than ``limit`` bytes."""

    def __init__(self, stream: IO[bytes], limit: int | None = None) -> None:
        self.stream = stream
        self.limit = limit
        self.size = 0
        self.digest = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(CHUNK if n is None or n < 0 else n)
        self.size += len(data)
        if self.limit is not None and self.size > self.limit:
            raise TooLarge(f"more than {self.limit} bytes")
        self.digest.update(data)
        return data


class Storage(Protocol):
    """The operations every backend offers."""

    def save(self, stream: IO[bytes], *, kind: str) -> Stored: ...
    def open(self, key: str) -> IO[bytes]: ...
    def delete(self, key: str) -> None: ...
    def exists(self, key: str) -> bool: ...
    def size(self, key: str) -> int: ...
    def describe(self) -> str: ...


def owner_tag() -> str:
    """``<pid>@<host>``: who writes a temporary file (read back by ``apps.registry.cleanup``)."""
    return f"{os.getpid()}@{socket.gethostname()}"


class FolderStorage:
    """Objects as files under one folder: ``<root>/<kind>/<uuid>``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def save(self, stream: IO[bytes], *, kind: str) -> Stored:
        """Copy the stream to a temporary file beside its final name, then rename it into place."""
        key = new_key(kind)
        final = self._path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        # Named for the process writing it, so the upload cleanup can tell a dead writer's leftover at once.
        tmp = final.with_name(f".{final.name}.{owner_tag()}.partial")
        reader = _HashingReader(stream)
        try:
            with open(tmp, "xb") as out:
                while chunk := reader.read(CHUNK):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return Stored(key=key, size=reader.size, sha256=reader.digest.hexdigest())

    def open(self, key: str) -> IO[bytes]:
        try:
            return open(self._path(key), "rb")  # noqa: SIM115 - the caller closes the stream
        except FileNotFoundError as exc:
            raise ObjectMissing(f"{key} is not in storage") from exc

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError as exc:
            raise ObjectMissing(f"{key} is not in storage") from exc

    def local_path(self, key: str) -> Path:
        """The file behind a key (the folder backend only)."""
        return self._path(key)

    def describe(self) -> str:
        return self.root.as_uri()


@functools.lru_cache(maxsize=8)
def _client(endpoint: str | None, region: str, access_key: str | None, secret: str | None):
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        # Path-style addressing works with every S3-compatible server; AWS still accepts it.
        s3={"addressing_style": "path"} if endpoint else {},
        # Checksums only where S3 requires them: older S3-compatible servers refuse the newer default ones.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint or None,
        region_name=region,
        aws_access_key_id=access_key or None,
        aws_secret_access_key=secret or None,
        config=config,
    )


def s3_client():
    """A boto3 S3 client for ``AWS_ENDPOINT_URL`` (any S3-compatible server) with the usual AWS credentials."""
    return _client(
        settings.AWS_ENDPOINT_URL,
        settings.AWS_REGION,
        os.environ.get("AWS_ACCESS_KEY_ID"),
        os.environ.get("AWS_SECRET_ACCESS_KEY"),
    )


def _is_missing(exc: Exception) -> bool:
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    return code in {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}


class S3Storage:
    """Objects in one bucket under a prefix: ``<prefix>/<kind>/<uuid>``."""

    def __init__(self, bucket: str, prefix: str) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = s3_client()

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def save(self, stream: IO[bytes], *, kind: str) -> Stored:
        """Upload (multipart for large streams); the object appears only once the upload completes."""
        key = new_key(kind)
        reader = _HashingReader(stream)
        self.client.upload_fileobj(reader, self.bucket, self._key(key))
        return Stored(key=key, size=reader.size, sha256=reader.digest.hexdigest())

    def open(self, key: str) -> IO[bytes]:
        return _get(self.client, self.bucket, self._key(key))

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except Exception as exc:
            if _is_missing(exc):
                return False
            raise

    def size(self, key: str) -> int:
        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=self._key(key))["ContentLength"])
        except Exception as exc:
            if _is_missing(exc):
                raise ObjectMissing(f"{key} is not in storage") from exc
            raise

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def _get(client, bucket: str, key: str) -> IO[bytes]:
    try:
        return client.get_object(Bucket=bucket, Key=key)["Body"]
    except Exception as exc:
        if _is_missing(exc):
            raise ObjectMissing(f"s3://{bucket}/{key} does not exist") from exc
        raise


def get_storage() -> FolderStorage | S3Storage:
    """The backend ``ASSAY_STORAGE_URL`` names (read on each call, so tests and operators can change it)."""
    url = urlparse(settings.ASSAY_STORAGE_URL)
    if url.scheme == "file":
        return FolderStorage(Path(url.path))
    if url.scheme == "s3":
        return S3Storage(url.netloc, url.path)
    raise ValueError(f"ASSAY_STORAGE_URL scheme {url.scheme!r} is not supported (use file:///abs/path or s3://bucket)")


# ---------------------------------------------------------------------------------------------
# References: s3://bucket/key given by a user, read by the worker.


@dataclass(frozen=True)
class S3Ref:
    """A validated ``s3://bucket/key`` reference."""

    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def allowed_buckets() -> list[str]:
    """The storage bucket (when storage is S3) plus ``ASSAY_ALLOWED_S3_BUCKETS``."""
    buckets = list(settings.ASSAY_ALLOWED_S3_BUCKETS)
    url = urlparse(settings.ASSAY_STORAGE_URL)
    if url.scheme == "s3" and url.netloc not in buckets:
        buckets.insert(0, url.netloc)
    return buckets


def parse_reference(uri: str, *, field: str = "artifact_uri") -> S3Ref:
    """Validate a user's reference; raise ``ValidationFailed`` (400) before anything is fetched.

    Only ``s3://`` is accepted, and only inside the allowed buckets: no ``http(s)://``,
    no ``file://``, no other scheme, so the server never requests a host a user chose.
    """
    uri = (uri or "").strip()
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    if scheme != "s3":
        shown = f"{scheme}://" if scheme else "a bare path"
        raise ValidationFailed(
            f"{field}: only s3:// references are accepted, not {shown} "
            "(the control plane never fetches from arbitrary hosts or local paths).",
            errors={field: ["Only s3://bucket/key references are accepted."]},
        )
    bucket, key = parsed.netloc, parsed.path.lstrip("/")
    if not bucket or not key or key.endswith("/") or parsed.query or parsed.fragment:
        raise ValidationFailed(
            f"{field}: expected s3://bucket/key naming one object.",
            errors={field: ["Expected s3://bucket/key naming one object."]},
        )
    allowed = allowed_buckets()
    if not _BUCKET_RE.match(bucket) or bucket not in allowed:
        listed = ", ".join(allowed) if allowed else "none are configured (ASSAY_ALLOWED_S3_BUCKETS)"
        raise ValidationFailed(
            f"{field}: bucket {bucket!r} is not one this control plane may read; allowed buckets: {listed}.",
            errors={field: [f"Bucket {bucket!r} is not allowed."]},
        )
    return S3Ref(bucket=bucket, key=key)


def open_reference(uri: str) -> IO[bytes]:
    """Open a referenced object for streaming (validated again: the worker trusts nothing it is given)."""
    ref = parse_reference(uri)
    return _get(s3_client(), ref.bucket, ref.key)


def copy_bounded(
    source: IO[bytes], target: IO[bytes], *, limit: int | None, progress: Callable[[int], None] | None = None
) -> tuple[str, int]:
    """Copy ``source`` into ``target``, hashing as it goes; ``TooLarge`` past ``limit`` bytes.

    ``progress`` is called with the byte count after each chunk (a worker renews its lease with it).
    """
    reader = _HashingReader(source, limit)
    while chunk := reader.read(CHUNK):
        target.write(chunk)
        if progress is not None:
            progress(reader.size)
    return reader.digest.hexdigest(), reader.size
