"""Bad input gets a clear error and leaves nothing behind: no row, no stored bytes, no job."""

from __future__ import annotations

import json

import pytest

from apps.jobs.models import Job
from apps.registry.models import Dataset, ModelVersion
from tests.registry import artifacts
from tests.registry.fixtures import stored_files, upload

pytestmark = pytest.mark.django_db

VERSIONS = "/api/v1/models/churn/versions/"
DATASETS = "/api/v1/datasets/"


def _nothing_left() -> None:
    assert not ModelVersion.objects.exists()
    assert not Dataset.objects.exists()
    assert not Job.objects.exists()
    assert stored_files() == []


@pytest.mark.parametrize(
    "make, reason",
    [
        (artifacts.pickle_bytes, "pickle"),
        (lambda: artifacts.joblib_bytes(3), "zlib-compressed pickle"),
        (lambda: artifacts.joblib_bytes(("gzip", 3)), "gzip-compressed pickle"),
        (lambda: artifacts.joblib_bytes(0), "pickle"),
        (artifacts.torch_like_zip_bytes, "data.pkl"),
        (artifacts.random_bytes, "match no accepted format"),
        (lambda: b'{"weights": [1, 2, 3]}', "not an XGBoost model"),
    ],
    ids=["pickle", "joblib-zlib", "joblib-gzip", "joblib-plain", "torch-zip", "random", "other-json"],
)
def test_unsafe_or_unknown_artifacts_are_refused_with_a_reason(contributor, api_client_for, model, make, reason):
    response = api_client_for(contributor).post(VERSIONS, {"artifact": upload(make(), "model.pkl")}, format="multipart")
    assert response.status_code == 415, response.json()
    assert response["Content-Type"] == "application/problem+json"
    assert reason in response.json()["detail"]
    _nothing_left()


def test_an_empty_artifact_is_refused(contributor, api_client_for, model):
    response = api_client_for(contributor).post(VERSIONS, {"artifact": upload(b"")}, format="multipart")
    assert response.status_code == 400
    assert "empty" in response.json()["detail"]
    _nothing_left()


def test_a_format_that_does_not_match_the_bytes_is_refused(contributor, api_client_for, model):
    response = api_client_for(contributor).post(
        VERSIONS, {"artifact": upload(artifacts.onnx_bytes()), "format": "skops"}, format="multipart"
    )
    assert response.status_code == 415
    assert "declared as skops but its bytes are onnx" in response.json()["detail"]
    _nothing_left()


def test_an_upload_over_the_size_limit_is_cut_off(settings, contributor, api_client_for, model):
    settings.ASSAY_MAX_UPLOAD_BYTES = 1000
    response = api_client_for(contributor).post(
        VERSIONS, {"artifact": upload(artifacts.random_bytes(5000))}, format="multipart"
    )
    assert response.status_code == 413
    assert response["Content-Type"] == "application/problem+json"
    assert "1000 bytes" in response.json()["detail"]
    _nothing_left()


def test_the_size_limit_holds_for_all_files_of_a_request_together(settings, contributor, api_client_for, model):
    settings.ASSAY_MAX_UPLOAD_BYTES = 1000
    response = api_client_for(contributor).post(
        VERSIONS,
        {"artifact": upload(artifacts.random_bytes(600)), "extra": upload(artifacts.random_bytes(600, seed=2))},
        format="multipart",
    )
    assert response.status_code == 413
    _nothing_left()


def test_a_dataset_upload_over_the_size_limit_is_cut_off(settings, contributor, api_client_for, team):
    settings.ASSAY_MAX_UPLOAD_BYTES = 1000
    response = api_client_for(contributor).post(
        DATASETS,
        {"file": upload(artifacts.csv_bytes(200)), "name": "big", "owner_team": "credit"},
        format="multipart",
    )
    assert response.status_code == 413
    _nothing_left()


def test_a_digest_that_does_not_match_the_upload_is_refused(contributor, api_client_for, model):
    response = api_client_for(contributor).post(
        VERSIONS, {"artifact": upload(artifacts.onnx_bytes()), "sha256": "0" * 64}, format="multipart"
    )
    assert response.status_code == 400
    _nothing_left()


@pytest.mark.parametrize(
    "uri",
    [
        "http://169.254.169.254/latest/meta-data/iam/",
        "https://models.example.com/churn.onnx",
        "file:///etc/passwd",
        "s3://someone-elses-bucket/model.onnx",
    ],
)
def test_references_outside_the_allowed_s3_buckets_are_refused_before_any_fetch(
    settings, contributor, api_client_for, model, uri
):
    settings.ASSAY_ALLOWED_S3_BUCKETS = ["ml-exports"]
    response = api_client_for(contributor).post(VERSIONS, {"artifact_uri": uri, "format": "onnx"}, format="json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    _nothing_left()


@pytest.mark.parametrize("uri", ["https://lake.example.com/x.csv", "file:///data/x.csv", "s3://elsewhere/x.csv"])
def test_dataset_references_outside_the_allowed_s3_buckets_are_refused(
    settings, contributor, api_client_for, team, uri
):
    settings.ASSAY_ALLOWED_S3_BUCKETS = ["lake"]
    response = api_client_for(contributor).post(
        DATASETS, {"name": "x", "owner_team": "credit", "uri": uri}, format="json"
    )
    assert response.status_code == 400
    _nothing_left()


@pytest.mark.parametrize(
    "make", [artifacts.csv_bytes, artifacts.jsonl_bytes, artifacts.parquet_bytes], ids=["csv", "jsonl", "parquet"]
)
def test_a_dataset_missing_declared_columns_is_refused_naming_them(contributor, api_client_for, team, make):
    # given: a file without the 'gender' and 'prediction' columns
    data = make(columns=["age", "income", "label"])
    # when
    response = api_client_for(contributor).post(
        DATASETS,
        {"file": upload(data), "name": "x", "owner_team": "credit", "schema": json.dumps(artifacts.schema())},
        format="multipart",
    )
    # then
    assert response.status_code == 400
    body = response.json()
    assert body["missing_columns"] == ["gender", "prediction"]
    assert "gender" in body["detail"] and "prediction" in body["detail"]
    _nothing_left()


@pytest.mark.parametrize(
    "make",
    [artifacts.pickle_bytes, artifacts.random_bytes, artifacts.torch_like_zip_bytes],
    ids=["pickle", "random", "zip"],
)
def test_datasets_that_are_not_csv_jsonl_or_parquet_are_refused(contributor, api_client_for, team, make):
    response = api_client_for(contributor).post(
        DATASETS, {"file": upload(make()), "name": "x", "owner_team": "credit"}, format="multipart"
    )
    assert response.status_code == 415
    _nothing_left()


def test_a_dataset_declared_as_another_format_is_refused(contributor, api_client_for, team):
    response = api_client_for(contributor).post(
        DATASETS,
        {"file": upload(artifacts.csv_bytes()), "name": "x", "owner_team": "credit", "format": "parquet"},
        format="multipart",
    )
    assert response.status_code == 415
    _nothing_left()


def test_a_refused_upload_by_someone_without_rights_stores_nothing(make_user, api_client_for, model):
    response = api_client_for(make_user("viewer", team=model.owner_team)).post(
        VERSIONS, {"artifact": upload(artifacts.pickle_bytes())}, format="multipart"
    )
    assert response.status_code == 403
    _nothing_left()
