"""Registry test fixtures, shared by tests/registry and tests/worker/test_verify_registry.py."""

from __future__ import annotations

import os
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.jobs.models import Job
from tests.factories.registry import RegisteredModelFactory


def stored_files() -> list[str]:
    """Every object in the local storage folder (keys, temporary files included), for 'nothing stored' checks."""
    root = Path(urlparse(settings.ASSAY_STORAGE_URL).path)
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def upload(data: bytes, name: str = "model.bin") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def register_reference(actor, *, model_name: str = "churn", bucket: str = "ml-exports", digest: str | None = None):
    """Register a version of ``model_name`` by ``s3://`` reference, as CI does (the bucket must be allowed)."""
    from apps.registry.services import versions

    digest = digest or secrets.token_hex(32)
    return versions.version_create(
        actor=actor,
        model_name=model_name,
        artifact_uri=f"s3://{bucket}/{model_name}/{digest[:12]}/model.onnx",
        sha256=digest,
        format="onnx",
    )


def job_of(obj) -> Job:
    obj.refresh_from_db()
    assert obj.verification_job_id, f"{obj} has no verification job"
    return obj.verification_job


@pytest.fixture
def contributor(make_user, team):
    """An ML engineer: contributor on the 'credit' team."""
    return make_user("contributor", username="cora", team=team)


@pytest.fixture
def contributor_principal(contributor, principal_of):
    return principal_of(contributor)


@pytest.fixture
def model(team):
    return RegisteredModelFactory(name="churn", owner_team=team)


@dataclass
class S3Env:
    """The S3 server the storage tests use: a client, the bucket, and this test's own key prefix."""

    client: object
    bucket: str
    prefix: str

    def put(self, name: str, data: bytes) -> str:
        """Put an object under this test's prefix; return its s3:// URI."""
        key = f"{self.prefix}/refs/{name}"
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
        return f"s3://{self.bucket}/{key}"

    def object_keys(self) -> list[str]:
        out = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix + "/"):
            out += [item["Key"][len(self.prefix) + 1 :] for item in page.get("Contents", [])]
        return sorted(out)

    def stored_keys(self) -> list[str]:
        """Objects the registry stored (not the references the test put there)."""
        return [k for k in self.object_keys() if not k.startswith("refs/")]


@pytest.fixture
def s3(settings, monkeypatch):
    """Point storage at a real S3-compatible server, under a prefix of this test's own."""
    endpoint = os.environ.get("ASSAY_TEST_S3_ENDPOINT")
    if not endpoint:
        pytest.skip(
            "needs an S3-compatible server: set ASSAY_TEST_S3_ENDPOINT, ASSAY_TEST_S3_ACCESS_KEY, "
            'ASSAY_TEST_S3_SECRET_KEY and ASSAY_TEST_S3_BUCKET (eval "$(bash scripts/services/s3.sh)" starts a '
            "Ceph RADOS gateway; .ci/run does it for you)"
        )
    from apps.core.storage import s3_client

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", os.environ.get("ASSAY_TEST_S3_ACCESS_KEY", "test"))
    monkeypatch.setenv(
        "AWS_SECRET_ACCESS_KEY",
        os.environ.get("ASSAY_TEST_S3_SECRET_KEY") or os.environ.get("ASSAY_TEST_S3_SECRET", "test"),
    )
    bucket = os.environ.get("ASSAY_TEST_S3_BUCKET", "assay-test")
    prefix = f"tests/{uuid.uuid4().hex}"
    settings.AWS_ENDPOINT_URL = endpoint
    settings.ASSAY_STORAGE_URL = f"s3://{bucket}/{prefix}"
    client = s3_client()
    try:
        client.head_bucket(Bucket=bucket)
    except Exception:
        client.create_bucket(Bucket=bucket)
    env = S3Env(client=client, bucket=bucket, prefix=prefix)
    yield env
    for key in env.object_keys():
        client.delete_object(Bucket=bucket, Key=f"{prefix}/{key}")
