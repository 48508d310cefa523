"""/api/v1/models/{name}/versions/: register (multipart or artifact_uri), read, list, retire."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.registry.models import ModelVersion
from tests.factories.registry import DatasetFactory, ModelVersionFactory
from tests.registry import artifacts
from tests.registry.fixtures import stored_files, upload

pytestmark = pytest.mark.django_db

VERSIONS = "/api/v1/models/churn/versions/"


def _multipart(data: bytes, **fields) -> dict:
    return {"artifact": upload(data), **fields}


# ---------------------------------------------------------------------------------------------
# POST (multipart)


def test_registering_a_version_needs_authentication(anon_client, model):
    response = anon_client.post(VERSIONS, _multipart(artifacts.onnx_bytes()), format="multipart")
    assert response.status_code == 401
    assert not ModelVersion.objects.exists() and stored_files() == []


def test_a_viewer_cannot_register_a_version(make_user, api_client_for, model):
    response = api_client_for(make_user("viewer", team=model.owner_team)).post(
        VERSIONS, _multipart(artifacts.onnx_bytes()), format="multipart"
    )
    assert response.status_code == 403
    assert not ModelVersion.objects.exists() and stored_files() == []


def test_a_user_without_roles_cannot_see_the_model_to_register_on(make_user, api_client_for, model):
    response = api_client_for(make_user()).post(VERSIONS, _multipart(artifacts.onnx_bytes()), format="multipart")
    assert response.status_code == 404
    assert not ModelVersion.objects.exists() and stored_files() == []


def test_a_contributor_uploads_a_version_with_lineage_metrics_and_model_card(
    contributor, api_client_for, model, audit_mark
):
    # given
    training = DatasetFactory(owner_team=model.owner_team)
    evaluation = DatasetFactory(owner_team=model.owner_team)
    data = artifacts.onnx_bytes()
    client = api_client_for(contributor)
    mark = audit_mark()
    # when
    response = client.post(
        VERSIONS,
        _multipart(
            data,
            metrics=json.dumps({"auc": 0.91, "f1": 0.8}),
            model_card=json.dumps({"overview": "Predicts churn", "ethical_considerations": "none known"}),
            source_repository="https://git.example.com/ml/churn",
            source_commit="4f2a9c1",
            ci_run_url="https://ci.example.com/runs/77",
            training_datasets=[training.pk],
            evaluation_dataset=evaluation.pk,
        ),
        format="multipart",
    )
    # then
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["number"] == 1 and body["format"] == "onnx" and body["status"] == "pending_verification"
    assert body["sha256"] == hashlib.sha256(data).hexdigest() and body["size"] == len(data)
    assert body["metrics"] == {"auc": 0.91, "f1": 0.8}
    assert body["model_card"]["overview"] == "Predicts churn"
    assert body["lineage"] == {
        "source_repository": "https://git.example.com/ml/churn",
        "source_commit": "4f2a9c1",
        "ci_run_url": "https://ci.example.com/runs/77",
        "training_datasets": [training.pk],
        "evaluation_dataset": evaluation.pk,
    }
    assert body["author"] == {"user": "cora", "service_account": None}
    assert body["verification"]["status"] == "queued"
    assert response["Location"].endswith("/api/v1/models/churn/versions/1/")
    events = mark.new()
    assert [e.action for e in events] == ["model_version.created"]
    assert events[0].artifact_sha256 == body["sha256"]
    assert stored_files() == [ModelVersion.objects.get().artifact_uri]


@pytest.mark.parametrize(
    "make, fmt",
    [
        (artifacts.skops_bytes, "skops"),
        (artifacts.xgboost_json_bytes, "xgboost"),
        (artifacts.xgboost_ubj_bytes, "xgboost"),
        (artifacts.lightgbm_bytes, "lightgbm"),
    ],
)
def test_each_accepted_format_is_detected_from_its_bytes(contributor, api_client_for, model, make, fmt):
    response = api_client_for(contributor).post(VERSIONS, _multipart(make()), format="multipart")
    assert response.status_code == 201, response.json()
    assert response.json()["format"] == fmt


def test_a_retried_upload_is_a_conflict_naming_the_existing_version(contributor, api_client_for, model):
    # given: CI registered the artifact, then retried after a lost response
    client = api_client_for(contributor)
    assert client.post(VERSIONS, _multipart(artifacts.onnx_bytes()), format="multipart").status_code == 201
    files = stored_files()
    # when
    response = client.post(VERSIONS, _multipart(artifacts.onnx_bytes()), format="multipart")
    # then
    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["existing_version"] == 1
    assert body["existing_version_url"].endswith("/api/v1/models/churn/versions/1/")
    assert "version 1" in body["detail"]
    assert ModelVersion.objects.count() == 1 and stored_files() == files


# ---------------------------------------------------------------------------------------------
# POST (JSON: artifact_uri, predictions_only)


def test_a_version_by_reference_is_recorded_for_the_worker_to_verify(
    settings, contributor, api_client_for, model, audit_mark
):
    # given
    settings.ASSAY_ALLOWED_S3_BUCKETS = ["ml-exports"]
    client = api_client_for(contributor)
    mark = audit_mark()
    # when
    response = client.post(
        VERSIONS, {"artifact_uri": "s3://ml-exports/churn/model.onnx", "format": "onnx"}, format="json"
    )
    # then
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["artifact_uri"] == "s3://ml-exports/churn/model.onnx" and body["artifact_is_reference"]
    assert body["sha256"] == "" and body["size"] is None
    assert mark.actions() == ["model_version.created"]


def test_a_reference_with_a_known_digest_is_a_conflict_before_any_fetch(settings, contributor, api_client_for, model):
    settings.ASSAY_ALLOWED_S3_BUCKETS = ["ml-exports"]
    existing = ModelVersionFactory(model=model, number=1)
    response = api_client_for(contributor).post(
        VERSIONS,
        {"artifact_uri": "s3://ml-exports/churn/model.onnx", "format": "onnx", "sha256": existing.sha256},
        format="json",
    )
    assert response.status_code == 409
    assert response.json()["existing_version"] == 1


def test_a_reference_needs_a_declared_format(settings, contributor, api_client_for, model):
    settings.ASSAY_ALLOWED_S3_BUCKETS = ["ml-exports"]
    response = api_client_for(contributor).post(
        VERSIONS, {"artifact_uri": "s3://ml-exports/churn/model.onnx"}, format="json"
    )
    assert response.status_code == 400
    assert not ModelVersion.objects.exists()


def test_a_predictions_only_version_points_at_its_evaluation_dataset(contributor, api_client_for, model):
    evaluation = DatasetFactory(owner_team=model.owner_team, schema=artifacts.schema())
    response = api_client_for(contributor).post(
        VERSIONS, {"format": "predictions_only", "evaluation_dataset": evaluation.pk}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["lineage"]["evaluation_dataset"] == evaluation.pk


# ---------------------------------------------------------------------------------------------
# GET list and detail


def test_listing_versions_needs_authentication(anon_client, model):
    assert anon_client.get(VERSIONS).status_code == 401


def test_versions_of_a_model_outside_your_scope_are_not_found(make_user, api_client_for, model):
    assert api_client_for(make_user()).get(VERSIONS).status_code == 404


def test_a_viewer_lists_versions_newest_first(make_user, api_client_for, model):
    ModelVersionFactory(model=model, number=1)
    ModelVersionFactory(model=model, number=2)
    response = api_client_for(make_user("viewer", model=model)).get(VERSIONS)
    assert response.status_code == 200
    assert [v["number"] for v in response.json()["results"]] == [2, 1]


def test_the_version_list_query_count_does_not_grow_with_page_size(
    make_user, api_client_for, model, django_assert_max_num_queries
):
    # given
    datasets = [DatasetFactory(owner_team=model.owner_team) for _ in range(2)]
    for number in range(1, 11):
        version = ModelVersionFactory(model=model, number=number, evaluation_dataset=datasets[0])
        version.training_datasets.set(datasets)
    client = api_client_for(make_user("viewer", team=model.owner_team))
    client.get(VERSIONS)
    with CaptureQueriesContext(connection) as small:
        assert len(client.get(VERSIONS, {"page_size": 2}).json()["results"]) == 2
    # when / then
    with django_assert_max_num_queries(len(small)):
        assert len(client.get(VERSIONS, {"page_size": 10}).json()["results"]) == 10


def test_reading_a_version_needs_authentication(anon_client, model):
    ModelVersionFactory(model=model, number=1)
    assert anon_client.get(f"{VERSIONS}1/").status_code == 401


def test_a_version_outside_your_scope_is_not_found(make_user, api_client_for, model):
    ModelVersionFactory(model=model, number=1)
    assert api_client_for(make_user()).get(f"{VERSIONS}1/").status_code == 404


def test_a_viewer_reads_a_version_with_its_digest_and_verification(make_user, api_client_for, contributor, model):
    # given
    api_client_for(contributor).post(VERSIONS, _multipart(artifacts.onnx_bytes()), format="multipart")
    # when
    response = api_client_for(make_user("viewer", team=model.owner_team)).get(f"{VERSIONS}1/")
    # then
    assert response.status_code == 200
    body = response.json()
    assert {"sha256", "size", "format", "status", "status_reason", "metrics", "lineage", "model_card", "author"} <= set(
        body
    )
    assert body["verification"]["progress"] == 0 and body["verification"]["status"] == "queued"


# ---------------------------------------------------------------------------------------------
# POST retire


def test_retiring_needs_authentication(anon_client, model):
    ModelVersionFactory(model=model, number=1)
    assert anon_client.post(f"{VERSIONS}1/retire/", {}, format="json").status_code == 401


def test_a_viewer_cannot_retire_a_version(make_user, api_client_for, model):
    ModelVersionFactory(model=model, number=1)
    client = api_client_for(make_user("viewer", team=model.owner_team))
    assert client.post(f"{VERSIONS}1/retire/", {}, format="json").status_code == 403
    assert api_client_for(make_user()).post(f"{VERSIONS}1/retire/", {}, format="json").status_code == 404


def test_a_contributor_retires_a_version(contributor, api_client_for, model, audit_mark):
    ModelVersionFactory(model=model, number=1)
    client = api_client_for(contributor)
    mark = audit_mark()
    response = client.post(f"{VERSIONS}1/retire/", {"reason": "superseded by v2"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "retired"
    assert mark.actions() == ["model_version.retired"]


# The version body is built by hand for speed; it must stay what DRF's field walk gives.


def test_the_version_body_is_exactly_what_drf_builds_from_the_declared_fields(
    settings, contributor, api_client_for, model, system
):
    from rest_framework import serializers as drf
    from rest_framework.test import APIRequestFactory

    from apps.jobs.services import job_enqueue
    from apps.registry.api.serializers import VersionOutput
    from tests.factories.accounts import ServiceAccountFactory

    settings.TIME_ZONE = "Europe/Paris"  # DRF renders times in the current zone; so must the fast path
    training = [DatasetFactory(owner_team=model.owner_team) for _ in range(2)]
    evaluation = DatasetFactory(owner_team=model.owner_team)
    plain = ModelVersionFactory(model=model, created_by=None, metrics={}, model_card={})
    rich = ModelVersionFactory(
        model=model,
        created_by=contributor,
        created_by_service_account=ServiceAccountFactory(owner=contributor),
        evaluation_dataset=evaluation,
        metrics={"auc": 0.91, "ünïcode": 1},
        model_card={"overview": "x", "nested": {"a": [1, None]}},
        description="d",
        status_reason="",
        size=None,
    )
    rich.training_datasets.set(training)
    rich.verification_job = job_enqueue(kind="registry.verify_version", target=rich, actor=system)
    rich.save(update_fields=["verification_job"])
    request = APIRequestFactory().get("/api/v1/")
    for version in (plain, ModelVersion.objects.select_related("verification_job").get(pk=rich.pk)):
        serializer = VersionOutput(version, context={"request": request})
        assert serializer.data == drf.ModelSerializer.to_representation(serializer, version)
    assert VersionOutput(rich, context={"request": request}).data["verification"]["status"] == "queued"


@pytest.mark.parametrize("dataset_id", [10**30, 2**63])
def test_a_dataset_id_no_database_column_can_hold_is_a_clear_400(contributor, api_client_for, model, dataset_id):
    # when a body names an evaluation dataset id past any integer column
    response = api_client_for(contributor).post(
        f"/api/v1/models/{model.name}/versions/",
        {"format": "predictions_only", "evaluation_dataset": dataset_id},
        format="json",
    )

    # then it is a 400 naming the field, and no version was created
    assert response.status_code == 400, response.content
    assert "evaluation_dataset" in response.json()["errors"]
    assert not model.versions.exists()
