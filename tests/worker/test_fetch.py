"""fetch_rehashed(): a stored object streamed into a local file, re-hashed, bounded and checked (worker/fetch.py)."""

from __future__ import annotations

import hashlib
import io

import pytest

from apps.core.storage import get_storage
from worker.fetch import DigestMismatch, Unfetchable, fetch_rehashed

DATA = b"assay " * 50_000  # 300 kB: several chunks


def stored() -> str:
    return get_storage().save(io.BytesIO(DATA), kind="artifacts").key


def test_the_copy_holds_the_bytes_with_their_digest_and_progress_reaches_the_end(tmp_path):
    # given a stored object
    key = stored()
    seen: list[float] = []

    # when it is fetched with its expected digest
    digest, size = fetch_rehashed(
        key,
        is_reference=False,
        target=tmp_path / "copy",
        what="stored artifact",
        expected_sha256=hashlib.sha256(DATA).hexdigest(),
        size_hint=len(DATA),
        progress=seen.append,
    )

    # then the copy is the object, and progress went from part-way to whole
    assert (digest, size) == (hashlib.sha256(DATA).hexdigest(), len(DATA))
    assert (tmp_path / "copy").read_bytes() == DATA
    assert seen and seen == sorted(seen) and seen[-1] == 1.0


def test_other_bytes_than_expected_are_a_digest_mismatch_naming_both_digests(tmp_path):
    # given a stored object and another digest
    key = stored()

    # when it is fetched expecting that digest
    with pytest.raises(DigestMismatch) as refused:
        fetch_rehashed(key, is_reference=False, target=tmp_path / "copy", what="dataset", expected_sha256="0" * 64)

    # then the message names what was found and what was expected
    assert (
        str(refused.value) == f"the dataset's sha256 is {hashlib.sha256(DATA).hexdigest()}, not the expected {'0' * 64}"
    )
    assert refused.value.size == len(DATA)


def test_an_object_past_the_limit_is_unfetchable(tmp_path):
    key = stored()
    with pytest.raises(Unfetchable, match="larger than the limit of 1000 bytes"):
        fetch_rehashed(key, is_reference=False, target=tmp_path / "copy", what="stored artifact", limit=1000)


def test_a_missing_object_is_unfetchable(tmp_path):
    # given an object removed from storage
    key = stored()
    get_storage().delete(key)

    # when it is fetched, then it is unfetchable, saying so
    with pytest.raises(Unfetchable, match="the stored artifact is missing"):
        fetch_rehashed(
            key,
            is_reference=False,
            target=tmp_path / "copy",
            what="stored artifact",
        )


def test_a_reference_outside_the_allowed_buckets_is_unfetchable(tmp_path, settings):
    settings.ASSAY_ALLOWED_S3_BUCKETS = []
    with pytest.raises(Unfetchable):
        fetch_rehashed(
            "s3://elsewhere/model.onnx", is_reference=True, target=tmp_path / "copy", what="referenced object"
        )
