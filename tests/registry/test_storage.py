"""Storage: the folder backend here, the S3 backend against any S3-compatible server, and references."""

from __future__ import annotations

import hashlib
import io

import pytest

from apps.core import storage
from apps.core.errors import ValidationFailed
from tests.registry.fixtures import stored_files


class Exploding(io.RawIOBase):
    """A stream that fails half way, like a client that hangs up mid-upload."""

    def __init__(self, good: bytes) -> None:
        self.good = good
        self.sent = False

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if not self.sent:
            self.sent = True
            return self.good
        raise ConnectionResetError("client went away")


def _roundtrip(backend) -> None:
    # given
    data = b"\x08\x0a" + bytes(range(256)) * 300
    # when
    saved = backend.save(io.BytesIO(data), kind="artifacts")
    # then
    assert saved.key.startswith("artifacts/") and len(saved.key) == len("artifacts/") + 32
    assert (saved.size, saved.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert backend.exists(saved.key) and backend.size(saved.key) == len(data)
    with backend.open(saved.key) as fh:
        assert fh.read() == data
    backend.delete(saved.key)
    assert not backend.exists(saved.key)
    with pytest.raises(storage.ObjectMissing):
        backend.size(saved.key)
    with pytest.raises(storage.ObjectMissing):
        backend.open(saved.key)


def test_the_folder_backend_saves_opens_sizes_and_deletes():
    backend = storage.get_storage()
    assert isinstance(backend, storage.FolderStorage)
    _roundtrip(backend)


def test_a_save_that_fails_half_way_leaves_no_file():
    with pytest.raises(ConnectionResetError):
        storage.get_storage().save(Exploding(b"x" * 1000), kind="artifacts")
    assert stored_files() == []


@pytest.mark.parametrize("key", ["../etc/passwd", "artifacts/../../x", "/abs/path", "artifacts/model.onnx", ""])
def test_keys_that_storage_did_not_generate_are_refused(key):
    with pytest.raises(storage.StorageError):
        storage.get_storage().open(key)


def test_keys_never_carry_a_file_name():
    keys = {storage.new_key("artifacts") for _ in range(100)}
    assert len(keys) == 100 and all(storage.check_key(k) for k in keys)
    with pytest.raises(ValueError):
        storage.new_key("../uploads")


# ---------------------------------------------------------------------------------------------
# References


@pytest.mark.parametrize(
    "uri, reason",
    [
        ("https://example.com/model.onnx", "https://"),
        ("http://169.254.169.254/latest/meta-data/", "http://"),
        ("file:///etc/passwd", "file://"),
        ("ftp://host/model", "ftp://"),
        ("/etc/passwd", "bare path"),
        ("s3://not-allowed-bucket/model.onnx", "not one this control plane may read"),
        ("s3://assay-models/", "naming one object"),
    ],
)
def test_references_outside_s3_and_the_allowed_buckets_are_refused(settings, uri, reason):
    settings.ASSAY_ALLOWED_S3_BUCKETS = ["assay-models"]
    with pytest.raises(ValidationFailed, match=reason):
        storage.parse_reference(uri)


def test_the_storage_bucket_and_the_configured_buckets_are_allowed(settings):
    settings.ASSAY_STORAGE_URL = "s3://assay-artifacts/prod"
    settings.ASSAY_ALLOWED_S3_BUCKETS = ["ml-exports"]
    assert storage.allowed_buckets() == ["assay-artifacts", "ml-exports"]
    assert storage.parse_reference("s3://ml-exports/churn/v3/model.onnx").key == "churn/v3/model.onnx"
    assert storage.parse_reference("s3://assay-artifacts/x").bucket == "assay-artifacts"


# ---------------------------------------------------------------------------------------------
# S3 (any S3-compatible server: Ceph RADOS gateway in CI)


@pytest.mark.service
def test_the_s3_backend_saves_opens_sizes_and_deletes(s3):
    backend = storage.get_storage()
    assert isinstance(backend, storage.S3Storage)
    _roundtrip(backend)
    assert s3.object_keys() == []


@pytest.mark.service
def test_a_large_s3_save_goes_up_in_parts_and_appears_whole(s3):
    # given: more than boto3's multipart threshold (8 MiB)
    data = bytes(range(256)) * (40 * 1024 + 7)
    # when
    saved = storage.get_storage().save(io.BytesIO(data), kind="datasets")
    # then
    assert saved.sha256 == hashlib.sha256(data).hexdigest()
    assert s3.object_keys() == [saved.key]
    assert storage.get_storage().size(saved.key) == len(data)


@pytest.mark.service
def test_an_s3_save_that_fails_half_way_leaves_no_object(s3):
    with pytest.raises(ConnectionResetError):
        storage.get_storage().save(Exploding(b"x" * 1000), kind="artifacts")
    assert s3.object_keys() == []


@pytest.mark.service
def test_a_reference_in_an_allowed_bucket_is_read_as_a_stream(s3):
    # given
    uri = s3.put("model.onnx", b"abc" * 1000)
    # when
    with storage.open_reference(uri) as fh:
        digest, size = storage.copy_bounded(fh, io.BytesIO(), limit=10_000)
    # then
    assert (digest, size) == (hashlib.sha256(b"abc" * 1000).hexdigest(), 3000)
    with storage.open_reference(uri) as fh, pytest.raises(storage.TooLarge):
        storage.copy_bounded(fh, io.BytesIO(), limit=100)
    with pytest.raises(storage.ObjectMissing):
        storage.open_reference(f"s3://{s3.bucket}/{s3.prefix}/refs/absent")
