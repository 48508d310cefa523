"""Upload handling: spool to a temporary file while hashing, and cut off oversized uploads.

``HashingUploadHandler`` is Django's only upload handler (``FILE_UPLOAD_HANDLERS``).
Each uploaded file is written to a temporary file whose name we choose (the
client's file name never reaches the filesystem) while its SHA-256 and size are
computed. Once a file passes ``ASSAY_MAX_UPLOAD_BYTES`` the handler discards it
and raises ``PayloadTooLarge``, which the API renders as a 413 problem: nothing
is stored and no row is written. The registry service then moves the spooled
bytes into storage.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler

from apps.core.errors import PayloadTooLarge
from apps.core.storage import owner_tag

CHUNK = 1024 * 1024


def max_upload_bytes() -> int:
    return int(settings.ASSAY_MAX_UPLOAD_BYTES)


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The upload is larger than the limit of {limit} bytes (ASSAY_MAX_UPLOAD_BYTES); nothing was stored.",
        extra={"limit_bytes": limit},
    )


def _spool_file() -> IO[bytes]:
    """A temporary file in ``FILE_UPLOAD_TEMP_DIR`` named for the process writing it (see ``apps.registry.cleanup``)."""
    folder = settings.FILE_UPLOAD_TEMP_DIR
    if folder:
        os.makedirs(folder, exist_ok=True)
    return tempfile.NamedTemporaryFile(prefix=f"assay-{owner_tag()}-", suffix=".upload", dir=folder)  # noqa: SIM115


class HashedUploadedFile(UploadedFile):
    """An upload spooled to a temporary file of our naming, with its ``sha256`` and ``size`` known."""

    def __init__(self, name: str, content_type: str, charset: str | None, content_type_extra: dict | None) -> None:
        super().__init__(_spool_file(), name, content_type, 0, charset, content_type_extra)
        self.sha256 = ""

    def temporary_file_path(self) -> str:
        return self.file.name

    def close(self) -> None:
        try:
            return self.file.close()
        except FileNotFoundError:
            pass


class HashingUploadHandler(FileUploadHandler):
    """Write each file to a temporary file while hashing it; refuse it once it passes the size limit."""

    def __init__(self, request=None) -> None:
        super().__init__(request)
        self.request_total = 0  # the limit holds for all files of one request together

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        # A body far larger than the file limit plus the form fields is refused before it is read.
        limit = max_upload_bytes()
        if content_length and content_length > limit + (settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0) + 64 * 1024:
            raise too_large(limit)
        return None

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        self.digest = hashlib.sha256()
        self.file = HashedUploadedFile(self.file_name, self.content_type, self.charset, self.content_type_extra)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.request_total += len(raw_data)
        limit = max_upload_bytes()
        if self.request_total > limit:
            self.file.close()
            raise too_large(limit)
        self.digest.update(raw_data)
        self.file.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> HashedUploadedFile:
        self.file.seek(0)
        self.file.size = file_size
        self.file.sha256 = self.digest.hexdigest()
        return self.file

    def upload_interrupted(self) -> None:
        if hasattr(self, "file"):
            self.file.close()


@dataclass
class Spooled:
    """Bytes ready to be checked and stored: a readable local file, its digest and size."""

    path: str
    sha256: str
    size: int
    _owned: IO[bytes] | None = None

    def open(self) -> IO[bytes]:
        return open(self.path, "rb")  # noqa: SIM115 - the caller closes it

    def close(self) -> None:
        if self._owned is not None:
            self._owned.close()


def spool(source) -> Spooled:
    """Turn an upload (or any binary file object, e.g. from the demo loader) into a ``Spooled``.

    Uploads that came through ``HashingUploadHandler`` are used as they are; other
    file objects are copied to a temporary file while hashed, with the same size limit.
    """
    limit = max_upload_bytes()
    if isinstance(source, HashedUploadedFile) and source.sha256:
        if source.size > limit:
            raise too_large(limit)
        return Spooled(path=source.temporary_file_path(), sha256=source.sha256, size=source.size)
    tmp = _spool_file()
    digest = hashlib.sha256()
    size = 0
    try:
        if hasattr(source, "seek"):
            with contextlib.suppress(OSError, ValueError):
                source.seek(0)
        while chunk := source.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            digest.update(chunk)
            tmp.write(chunk)
        tmp.flush()
    except BaseException:
        tmp.close()
        raise
    return Spooled(path=tmp.name, sha256=digest.hexdigest(), size=size, _owned=tmp)
