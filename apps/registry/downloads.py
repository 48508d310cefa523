"""Downloads of a version's artifact or of a dataset: short-lived signed links, checked again when followed.

A download starts with a write (``apps.registry.services.downloads``): it needs ``registry.download``
on the object, writes its audit event (``model_version.artifact_downloaded`` / ``dataset.downloaded``)
and hands back a link (``link_issue``) signed with the site's secret key that names the principal it
was issued to, the object, the object's SHA-256 and an expiry (``ASSAY_DOWNLOAD_LINK_SECONDS``, five
minutes by default). The link is no bearer credential: it works only for the principal it names.

Following the link (``download_open``) is a read: it writes nothing when it succeeds. It refuses a
link that was altered (403 ``download_link_invalid``), one past its expiry (410
``download_link_expired``), one issued to someone else and a principal who no longer holds
``registry.download`` (403; both audited as denials, as every refusal of a person is); an object whose
bytes are not known-good (409 ``not_downloadable``). It then streams the bytes from storage in chunks,
hashing them as they go: when they differ from the recorded digest the stream stops before its last
chunk (``DownloadCorrupted``), so no client ever receives a complete file that is not the one on record.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from apps.core.errors import Conflict, Denied, DomainError
from apps.core.principals import Principal
from apps.core.storage import (
    CHUNK,
    ObjectMissing,
    StorageError,
    get_storage,
    open_reference,
    parse_reference,
    s3_client,
)
from apps.rbac import services as rbac

from .choices import ArtifactFormat, DatasetFormat, DatasetStatus, VersionStatus
from .models import Dataset, ModelVersion

logger = logging.getLogger(__name__)

PERMISSION = "registry.download"
_SALT = "assay.registry.download"
VERSION, DATASET = "model_version", "dataset"

_ARTIFACT_SUFFIX = {
    ArtifactFormat.ONNX: ".onnx",
    ArtifactFormat.SKOPS: ".skops",
    ArtifactFormat.XGBOOST: ".json",
    ArtifactFormat.LIGHTGBM: ".txt",
}
_DATASET_SUFFIX = {DatasetFormat.CSV: ".csv", DatasetFormat.PARQUET: ".parquet", DatasetFormat.JSONL: ".jsonl"}
_DATASET_TYPE = {
    DatasetFormat.CSV: "text/csv",
    DatasetFormat.PARQUET: "application/vnd.apache.parquet",
    DatasetFormat.JSONL: "application/jsonl",
}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class NotDownloadable(Conflict):
    """The object's bytes are not known-good (not verified yet, invalid, retired, no artifact): 409."""

    code = "not_downloadable"
    title = "Not downloadable"


class LinkInvalid(DomainError):
    """A download link that was not issued by this control plane as it stands (altered or malformed): 403."""

    status_code = 403
    code = "download_link_invalid"
    title = "Download link not valid"


class LinkExpired(DomainError):
    """A download link past its expiry: 410, ask for a new one."""

    status_code = 410
    code = "download_link_expired"
    title = "Download link expired"


class DownloadCorrupted(StorageError):
    """The bytes read from storage are not those on record; raised before the stream's last chunk."""


@dataclass(frozen=True)
class DownloadLink:
    """What a download request answers: the link to follow (a path on this site), and what it will give."""

    url: str
    expires_at: datetime
    filename: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Download:
    """An opened download: the bytes as chunks (the stream closes when they run out) and their headers."""

    target: ModelVersion | Dataset
    filename: str
    content_type: str
    sha256: str
    size: int
    chunks: Iterator[bytes]


def safe_filename(name: str) -> str:
    """A file name made only of letters, digits, dots, dashes and underscores (no path, no quote)."""
    cleaned = _UNSAFE.sub("_", name).strip("._") or "download"
    return cleaned[:150]


def filename_for(obj: ModelVersion | Dataset) -> str:
    """``<model>-v<n>.<format>`` for an artifact, ``<dataset name>.<format>`` for a dataset."""
    if isinstance(obj, ModelVersion):
        return safe_filename(f"{obj.model.name}-v{obj.number}") + _ARTIFACT_SUFFIX.get(obj.format, ".bin")
    return safe_filename(obj.name) + _DATASET_SUFFIX.get(obj.format, ".bin")


def check_downloadable(obj: ModelVersion | Dataset) -> None:
    """Raise ``NotDownloadable`` (409, saying why) unless the object's bytes were verified and are on record."""
    if isinstance(obj, ModelVersion):
        what = f"Version {obj.number} of {obj.model.name}"
        if obj.format == ArtifactFormat.PREDICTIONS_ONLY:
            raise NotDownloadable(
                f"{what} is registered as predictions only: it has no artifact. Its evaluation dataset holds its data."
            )
        statuses = VersionStatus
    else:
        what, statuses = f"Dataset {obj.name}", DatasetStatus
    uri, is_reference = _location(obj)
    if obj.status == statuses.PENDING_VERIFICATION:
        fetched = " Its bytes are referenced, not uploaded, and have not been fetched yet." if is_reference else ""
        raise NotDownloadable(
            f"{what} is not verified yet.{fetched} Only bytes a worker has read and hashed can be downloaded; "
            "try again once verification has finished."
        )
    if obj.status == statuses.INVALID:
        reason = obj.status_reason or "it failed verification"
        raise NotDownloadable(f"{what} is invalid ({reason}): there are no good bytes.")
    if obj.status != statuses.READY:
        raise NotDownloadable(f"{what} is {obj.status}: only verified, current objects can be downloaded.")
    if not obj.sha256 or obj.size is None or not uri:
        raise NotDownloadable(f"{what} has no recorded digest and size, so its bytes cannot be vouched for.")


def link_issue(*, actor: Principal, obj: ModelVersion | Dataset) -> DownloadLink:
    """Sign a link to the object's bytes for ``actor`` alone, valid for ``ASSAY_DOWNLOAD_LINK_SECONDS``."""
    kind = VERSION if isinstance(obj, ModelVersion) else DATASET
    token, expires_at = sign_link({"o": kind, "i": obj.pk, "p": [actor.kind, actor.id], "h": obj.sha256}, salt=_SALT)
    return DownloadLink(
        url=reverse("api:registry-download", kwargs={"token": token}),
        expires_at=expires_at,
        filename=filename_for(obj),
        sha256=obj.sha256,
        size=obj.size,
    )


def sign_link(payload: dict, *, salt: str) -> tuple[str, datetime]:
    """A signed, compressed token carrying ``payload`` and an expiry ``ASSAY_DOWNLOAD_LINK_SECONDS`` from now.

    Shared by every download of the control plane (artifacts and datasets here, report files in
    ``apps.reports``), each with its own ``salt`` so a token of one kind is never read as another's.
    """
    expires_at = timezone.now().replace(microsecond=0) + timedelta(seconds=settings.ASSAY_DOWNLOAD_LINK_SECONDS)
    return signing.dumps({**payload, "e": int(expires_at.timestamp())}, salt=salt, compress=True), expires_at


def open_link(token: str, *, salt: str) -> dict:
    """The payload of a token ``sign_link`` made with ``salt``: ``LinkInvalid`` when altered or malformed,
    ``LinkExpired`` past its expiry. The caller checks what the payload names."""
    try:
        payload = signing.loads(token, salt=salt)
    except (signing.BadSignature, ValueError, TypeError):
        raise LinkInvalid("This download link is not valid: it was altered or is incomplete. Ask for a new one.")
    if not isinstance(payload, dict) or not isinstance(payload.get("e"), int):
        raise LinkInvalid("This download link is not valid. Ask for a new one.")
    if datetime.fromtimestamp(payload["e"], tz=UTC) <= timezone.now():
        raise LinkExpired("This download link has expired (links are valid for a few minutes). Ask for a new one.")
    return payload


def _read_link(token: str) -> dict:
    payload = open_link(token, salt=_SALT)
    if payload.get("o") not in (VERSION, DATASET):
        raise LinkInvalid("This download link is not valid. Ask for a new one.")
    return payload


def _target(payload: dict) -> ModelVersion | Dataset | None:
    if payload["o"] == VERSION:
        return ModelVersion.objects.select_related("model").filter(pk=payload["i"]).first()
    return Dataset.objects.filter(pk=payload["i"]).first()


def download_open(*, actor: Principal, token: str) -> Download:
    """Check a signed link as it is followed, then open the object's bytes as a verified stream.

    A read: nothing is written unless the principal is refused (the error handler records the denial).
    The permission is checked again now, so a role revoked after the link was issued stops it.
    """
    payload = _read_link(token)
    obj = _target(payload)
    if obj is None:
        raise LinkInvalid("This download link names an object that no longer exists.")
    if list(actor.key) != payload["p"]:
        raise Denied(
            "This download link was issued to another account; ask for your own.",
            action=PERMISSION,
            audit_action=f"{payload['o']}.download_denied",
            target=obj,
            visible=True,  # a link is readable (signed, not encrypted): this 403 reveals nothing it does not
        )
    rbac.require(actor, PERMISSION, obj, audit_action=f"{payload['o']}.download_denied")
    check_downloadable(obj)
    if obj.sha256 != payload["h"]:
        raise NotDownloadable("The object's recorded digest changed since this link was issued. Ask for a new one.")
    stream = _open_checked(obj)
    return Download(
        target=obj,
        filename=filename_for(obj),
        content_type=_DATASET_TYPE.get(obj.format, "text/plain")
        if isinstance(obj, Dataset)
        else "application/octet-stream",
        sha256=obj.sha256,
        size=obj.size,
        chunks=verified_chunks(stream, sha256=obj.sha256, size=obj.size, what=filename_for(obj)),
    )


def _location(obj: ModelVersion | Dataset) -> tuple[str, bool]:
    if isinstance(obj, ModelVersion):
        return obj.artifact_uri, obj.artifact_is_reference
    return obj.uri, obj.is_reference


def _open_checked(obj: ModelVersion | Dataset) -> IO[bytes]:
    """Open the stored (or referenced) bytes after checking their size against the record: 409 when they are
    gone or another size (changed since verification), so a client is told before any byte is sent."""
    uri, is_reference = _location(obj)
    try:
        if is_reference:
            ref = parse_reference(uri)
            size = int(s3_client().head_object(Bucket=ref.bucket, Key=ref.key)["ContentLength"])
        else:
            size = get_storage().size(uri)
    except ObjectMissing:
        size = None
    except DomainError:  # a reference to a bucket no longer allowed
        raise NotDownloadable("The referenced object is in a bucket this control plane may no longer read.")
    except Exception as exc:
        if str(getattr(exc, "response", {}).get("Error", {}).get("Code", "")) in {"404", "NoSuchKey", "NotFound"}:
            size = None
        else:
            raise
    if size is None:
        raise NotDownloadable("The bytes are missing from storage; an operator must restore them.")
    if size != obj.size:
        raise NotDownloadable(
            f"The stored bytes are {size} bytes long, not the {obj.size} on record: they changed since verification."
        )
    return open_reference(uri) if is_reference else get_storage().open(uri)


def verified_chunks(stream: IO[bytes], *, sha256: str, size: int, what: str = "download") -> Iterator[bytes]:
    """The stream's bytes in chunks of at most ``CHUNK``, hashed as they pass; the stream is closed at the end.

    The last chunk is held back until the digest and length are known: when they differ from the
    record, ``DownloadCorrupted`` is raised instead, the response ends short of its Content-Length and
    the client sees an incomplete transfer rather than a complete wrong file. At most two chunks are
    in memory at any time, whatever the object's size.
    """
    digest = hashlib.sha256()
    count = 0
    held = b""
    try:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
            count += len(chunk)
            if held:
                yield held
            held = chunk
        if count != size or digest.hexdigest() != sha256:
            logger.error("download of %s stopped: the stored bytes do not match their recorded digest", what)
            raise DownloadCorrupted(f"the bytes of {what} do not match their recorded sha256")
        if held:
            yield held
    finally:
        stream.close()
