"""/api/v1/datasets/: register (upload or s3:// URI), list, read."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.registry.models import Dataset
from tests.factories.registry import DatasetFactory
from tests.registry import artifacts
from tests.registry.fixtures import stored_files, upload

pytestmark = pytest.mark.django_db

DATASETS = "/api/v1/datasets/"


def _form(data: bytes, name: str = "applications.csv", **fields) -> dict:
    return {
        "file": upload(data, name),
        "name": "applications-2025",
        "owner_team": "credit",
        "schema": json.dumps(artifacts.schema()),
        **fields,
    }


def test_registering_a_dataset_needs_authentication(anon_client, team):
    assert anon_client.post(DATASETS, _form(artifacts.csv_bytes()), format="multipart").status_code == 401
    assert not Dataset.objects.exists() and stored_files() == []


def test_a_viewer_cannot_register_a_dataset(make_user, api_client_for, team):
    client = api_client_for(make_user("viewer", team=team))
    assert client.post(DATASETS, _form(artifacts.csv_bytes()), format="multipart").status_code == 403
    assert api_client_for(make_user()).post(DATASETS, _form(artifacts.csv_bytes()), format="multipart").status_code in (
        403,
        404,
    )
    assert not Dataset.objects.exists() and stored_files() == []


@pytest.mark.parametrize(
    "make, fmt", [(artifacts.csv_bytes, "csv"), (artifacts.jsonl_bytes, "jsonl"), (artifacts.parquet_bytes, "parquet")]
)
def test_a_contributor_uploads_a_dataset_with_column_roles(contributor, api_client_for, team, audit_mark, make, fmt):
    # given
    client = api_client_for(contributor)
    mark = audit_mark()
    # when
    response = client.post(DATASETS, _form(make()), format="multipart")
    # then
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["format"] == fmt and body["status"] == "pending_verification" and len(body["sha256"]) == 64
    assert {c["name"]: c["role"] for c in body["schema"]} == {
        "age": "feature",
        "income": "feature",
        "gender": "sensitive",
        "label": "label",
        "prediction": "prediction",
    }
    assert body["verification"]["status"] == "queued"
    assert mark.actions() == ["dataset.created"]


def test_a_dataset_by_reference_is_recorded_for_the_worker(settings, contributor, api_client_for, team, audit_mark):
    settings.ASSAY_ALLOWED_S3_BUCKETS = ["lake"]
    client = api_client_for(contributor)
    mark = audit_mark()
    response = client.post(
        DATASETS,
        {"name": "lake-extract", "owner_team": "credit", "uri": "s3://lake/extracts/2025.parquet", "schema": []},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["format"] == "parquet" and response.json()["is_reference"]
    assert mark.actions() == ["dataset.created"]


def test_listing_datasets_needs_authentication(anon_client):
    assert anon_client.get(DATASETS).status_code == 401


def test_datasets_are_listed_within_scope(make_user, api_client_for, team, other_team):
    DatasetFactory(owner_team=team, name="mine")
    DatasetFactory(owner_team=other_team, name="theirs")
    assert api_client_for(make_user()).get(DATASETS).json()["count"] == 0
    response = api_client_for(make_user("viewer", team=team)).get(DATASETS)
    assert response.status_code == 200
    assert [d["name"] for d in response.json()["results"]] == ["mine"]


def test_the_dataset_list_query_count_does_not_grow_with_page_size(
    make_user, api_client_for, team, contributor, django_assert_max_num_queries
):
    parent = DatasetFactory(owner_team=team)
    for _ in range(10):
        DatasetFactory(owner_team=team, source=parent, created_by=contributor)
    client = api_client_for(make_user("viewer", team=team))
    client.get(DATASETS)
    with CaptureQueriesContext(connection) as small:
        assert len(client.get(DATASETS, {"page_size": 2}).json()["results"]) == 2
    with django_assert_max_num_queries(len(small)):
        assert len(client.get(DATASETS, {"page_size": 11}).json()["results"]) == 11


def test_reading_a_dataset_needs_authentication(anon_client, team):
    dataset = DatasetFactory(owner_team=team)
    assert anon_client.get(f"{DATASETS}{dataset.pk}/").status_code == 401


def test_a_dataset_outside_your_scope_is_not_found(make_user, api_client_for, team):
    dataset = DatasetFactory(owner_team=team)
    assert api_client_for(make_user()).get(f"{DATASETS}{dataset.pk}/").status_code == 404


def test_a_viewer_reads_a_dataset(make_user, api_client_for, team):
    dataset = DatasetFactory(owner_team=team, schema=artifacts.schema())
    response = api_client_for(make_user("viewer", team=team)).get(f"{DATASETS}{dataset.pk}/")
    assert response.status_code == 200
    assert response.json()["id"] == dataset.pk and len(response.json()["schema"]) == 5
