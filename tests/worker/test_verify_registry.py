"""The verification worker on real artifacts and datasets: load for real, mark ready or invalid.

Jobs run in-process with ``worker.runner.run_job`` after the registering transaction,
exactly as a Celery worker runs them (the courier task only calls ``run_job``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.conf import settings

import worker.tasks.registry  # noqa: F401 - registers the registry job handlers
from apps.audit.models import AuditEvent
from apps.jobs import services as jobs
from apps.jobs.models import JobStatus
from apps.registry import services
from apps.registry.models import Dataset, ModelVersion
from tests.registry import artifacts, fixtures
from tests.registry.fixtures import job_of, stored_files, upload
from worker.runner import run_job

# The registry's fixtures, shared with tests/registry.
contributor = fixtures.contributor
contributor_principal = fixtures.contributor_principal
model = fixtures.model
s3 = fixtures.s3

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """run(obj) -> runs the object's verification job as a worker would, after-commit work included."""

    def go(obj) -> str:
        with django_capture_on_commit_callbacks(execute=True):
            outcome = run_job(job_of(obj).pk)
        obj.refresh_from_db()
        return outcome

    return go


def register(actor, data: bytes, **kwargs) -> ModelVersion:
    return services.version_create(actor=actor, model_name="churn", artifact=upload(data), **kwargs)


def _events(obj, prefix: str) -> list[str]:
    return list(
        AuditEvent.objects.filter(target_id=str(obj.pk), action__startswith=prefix)
        .order_by("id")
        .values_list("action", flat=True)
    )


# ---------------------------------------------------------------------------------------------
# Versions


@pytest.mark.parametrize(
    "make, fmt",
    [
        (artifacts.onnx_bytes, "onnx"),
        (artifacts.skops_bytes, "skops"),
        (lambda: artifacts.skops_bytes("gradient_boosting"), "skops"),
        (artifacts.xgboost_json_bytes, "xgboost"),
        (artifacts.xgboost_ubj_bytes, "xgboost"),
        (artifacts.lightgbm_bytes, "lightgbm"),
    ],
    ids=["onnx", "skops", "skops-trees", "xgboost-json", "xgboost-ubj", "lightgbm"],
)
def test_a_real_artifact_is_loaded_and_the_version_becomes_ready(contributor_principal, model, run, make, fmt):
    # given
    version = register(contributor_principal, make())
    assert version.format == fmt
    # when
    outcome = run(version)
    # then
    assert outcome == "succeeded"
    assert version.status == "ready" and version.status_reason == ""
    job = job_of(version)
    assert (job.status, job.progress) == (JobStatus.SUCCEEDED, 100)
    assert job.result["status"] == "ready" and job.result["details"]
    assert _events(version, "model_version.") == ["model_version.created", "model_version.verified"]
    verified = AuditEvent.objects.get(action="model_version.verified", target_id=str(version.pk))
    assert verified.artifact_sha256 == version.sha256 and verified.actor_type == "system"
    assert stored_files() == [version.artifact_uri]


def test_an_onnx_model_that_does_not_parse_is_invalid_and_its_bytes_deleted(contributor_principal, model, run):
    # given: bytes that pass the web process's cheap check
    version = register(contributor_principal, artifacts.corrupt_onnx_bytes())
    assert version.format == "onnx" and stored_files() == [version.artifact_uri]
    # when
    run(version)
    # then
    assert version.status == "invalid"
    assert "not a readable ONNX model" in version.status_reason
    assert stored_files() == []
    assert _events(version, "model_version.") == ["model_version.created", "model_version.invalidated"]
    event = AuditEvent.objects.get(action="model_version.invalidated", target_id=str(version.pk))
    assert event.outcome == "failed" and event.reason == version.status_reason


def test_an_onnx_model_the_checker_rejects_is_invalid(contributor_principal, model, run):
    version = register(contributor_principal, artifacts.unloadable_onnx_bytes())
    run(version)
    assert version.status == "invalid"
    assert "NoSuchOperator" in version.status_reason
    assert stored_files() == []


def test_a_skops_file_with_an_untrusted_type_is_refused_naming_the_type(contributor_principal, model, run):
    version = register(contributor_principal, artifacts.untrusted_skops_bytes())
    run(version)
    assert version.status == "invalid"
    assert "tests.registry.artifacts.double" in version.status_reason
    assert stored_files() == []


def test_stored_bytes_that_changed_after_upload_are_caught(contributor_principal, model, run):
    # given: someone with access to the storage folder swaps the bytes
    version = register(contributor_principal, artifacts.onnx_bytes(0))
    path = Path(urlparse(settings.ASSAY_STORAGE_URL).path) / version.artifact_uri
    path.write_bytes(artifacts.onnx_bytes(1))
    # when
    run(version)
    # then
    assert version.status == "invalid"
    assert "no longer match" in version.status_reason
    assert stored_files() == []


def test_running_a_verification_twice_is_a_no_op(contributor_principal, model, run, audit_mark):
    # given
    version = register(contributor_principal, artifacts.onnx_bytes())
    run(version)
    mark = audit_mark()
    # when: the same job again (a duplicate message) ...
    assert run(version) == "skipped"
    # ... and a fresh job for the same version
    again = jobs.job_enqueue(kind=services.VERIFY_VERSION, target=version, params={"version_id": version.pk})
    ModelVersion.objects.filter(pk=version.pk).update(verification_job=again)
    outcome = run(version)
    # then
    assert outcome == "succeeded"
    assert job_of(version).result == {"skipped": "version is already ready"}
    assert version.status == "ready"
    assert [a for a in mark.actions() if a.startswith("model_version.")] == []


def test_a_retired_version_is_not_verified_afterwards(contributor_principal, model, run):
    version = register(contributor_principal, artifacts.onnx_bytes())
    services.version_retire(actor=contributor_principal, model_name="churn", number=version.number)
    run(version)
    assert version.status == "retired"
    assert stored_files() == [version.artifact_uri]


# ---------------------------------------------------------------------------------------------
# Datasets


@pytest.mark.parametrize(
    "make", [artifacts.csv_bytes, artifacts.jsonl_bytes, artifacts.parquet_bytes], ids=["csv", "jsonl", "parquet"]
)
def test_a_dataset_is_read_in_full_and_its_rows_counted(contributor_principal, team, run, make):
    # given
    dataset = services.dataset_create(
        actor=contributor_principal,
        name="applications",
        owner_team=team,
        file=upload(make(1234)),
        schema=artifacts.schema(),
    )
    # when
    assert run(dataset) == "succeeded"
    # then
    assert dataset.status == "ready" and dataset.row_count == 1234
    assert _events(dataset, "dataset.") == ["dataset.created", "dataset.verified"]
    assert job_of(dataset).progress == 100


def test_a_csv_whose_rows_do_not_parse_is_invalid_and_its_bytes_deleted(contributor_principal, team, run):
    # given: a good header (the cheap check passes) and a broken row far down
    data = artifacts.csv_bytes(100) + b"1,2\n"
    dataset = services.dataset_create(actor=contributor_principal, name="broken", owner_team=team, file=upload(data))
    # when
    run(dataset)
    # then
    assert dataset.status == "invalid"
    assert "cannot read the csv file" in dataset.status_reason
    assert stored_files() == []
    assert _events(dataset, "dataset.") == ["dataset.created", "dataset.invalidated"]


def test_a_predictions_only_version_follows_its_evaluation_dataset(contributor_principal, team, model, run):
    # given: the version is registered while its dataset is still being verified
    dataset = services.dataset_create(
        actor=contributor_principal,
        name="scored",
        owner_team=team,
        file=upload(artifacts.parquet_bytes()),
        schema=artifacts.schema(),
    )
    version = services.version_create(
        actor=contributor_principal, model_name="churn", format="predictions_only", evaluation_dataset_id=dataset.pk
    )
    run(version)
    assert version.status == "pending_verification"
    # when
    run(dataset)
    # then
    version.refresh_from_db()
    assert version.status == "ready"
    assert _events(version, "model_version.") == ["model_version.created", "model_version.verified"]


def test_a_predictions_only_version_on_an_invalid_dataset_is_invalid(contributor_principal, team, model, run):
    dataset = services.dataset_create(
        actor=contributor_principal,
        name="scored",
        owner_team=team,
        file=upload(artifacts.csv_bytes(20) + b"1,2\n"),
        schema=artifacts.schema(),
    )
    version = services.version_create(
        actor=contributor_principal, model_name="churn", format="predictions_only", evaluation_dataset_id=dataset.pk
    )
    run(dataset)
    version.refresh_from_db()
    assert version.status == "invalid"
    assert f"Evaluation dataset {dataset.pk} is invalid" in version.status_reason


# ---------------------------------------------------------------------------------------------
# On S3: uploads stored in the bucket, and s3:// references fetched by the worker


@pytest.mark.service
def test_an_upload_stored_in_s3_is_verified_from_there(s3, contributor_principal, model, run):
    version = register(contributor_principal, artifacts.onnx_bytes())
    assert s3.stored_keys() == [version.artifact_uri]
    run(version)
    assert version.status == "ready"


@pytest.mark.service
def test_an_invalid_upload_in_s3_is_deleted(s3, contributor_principal, model, run):
    version = register(contributor_principal, artifacts.corrupt_onnx_bytes())
    run(version)
    assert version.status == "invalid"
    assert s3.stored_keys() == []


@pytest.mark.service
def test_a_referenced_artifact_is_fetched_hashed_and_loaded(s3, contributor_principal, model, run):
    # given
    data = artifacts.lightgbm_bytes()
    uri = s3.put("churn/model.txt", data)
    version = services.version_create(
        actor=contributor_principal, model_name="churn", artifact_uri=uri, format="lightgbm"
    )
    assert version.sha256 == "" and version.size is None
    # when
    run(version)
    # then
    assert version.status == "ready"
    assert (version.sha256, version.size) == (hashlib.sha256(data).hexdigest(), len(data))
    verified = AuditEvent.objects.get(action="model_version.verified", target_id=str(version.pk))
    assert verified.artifact_sha256 == version.sha256


@pytest.mark.service
def test_a_reference_whose_digest_differs_from_the_expected_one_is_invalid(s3, contributor_principal, model, run):
    uri = s3.put("churn/model.onnx", artifacts.onnx_bytes())
    version = services.version_create(
        actor=contributor_principal, model_name="churn", artifact_uri=uri, format="onnx", sha256="ab" * 32
    )
    run(version)
    assert version.status == "invalid"
    assert "not the expected" in version.status_reason
    assert s3.object_keys() == ["refs/churn/model.onnx"]  # a referenced object is never deleted


@pytest.mark.service
def test_a_reference_duplicating_another_version_is_invalid_naming_it(s3, contributor_principal, model, run):
    # given: version 1 uploaded; version 2 references the same bytes without saying their digest
    data = artifacts.onnx_bytes()
    register(contributor_principal, data)
    uri = s3.put("churn/same.onnx", data)
    version = services.version_create(actor=contributor_principal, model_name="churn", artifact_uri=uri, format="onnx")
    # when
    run(version)
    # then
    assert version.status == "invalid"
    assert "already version 1" in version.status_reason


@pytest.mark.service
def test_a_missing_or_pickled_reference_is_invalid(s3, contributor_principal, model, run):
    missing = services.version_create(
        actor=contributor_principal,
        model_name="churn",
        artifact_uri=f"s3://{s3.bucket}/{s3.prefix}/refs/none",
        format="onnx",
    )
    pickled = services.version_create(
        actor=contributor_principal,
        model_name="churn",
        artifact_uri=s3.put("model.pkl", artifacts.pickle_bytes()),
        format="skops",
    )
    run(missing)
    run(pickled)
    assert missing.status == "invalid" and "missing" in missing.status_reason
    assert pickled.status == "invalid" and "pickle" in pickled.status_reason.lower()


@pytest.mark.service
def test_a_reference_over_the_size_limit_is_invalid(settings, s3, contributor_principal, model, run):
    uri = s3.put("big.onnx", artifacts.onnx_bytes())
    version = services.version_create(actor=contributor_principal, model_name="churn", artifact_uri=uri, format="onnx")
    settings.ASSAY_MAX_UPLOAD_BYTES = 100
    run(version)
    assert version.status == "invalid" and "limit" in version.status_reason


@pytest.mark.service
def test_a_referenced_dataset_is_counted_and_checked_against_its_columns(s3, contributor_principal, team, run):
    # given
    good = services.dataset_create(
        actor=contributor_principal,
        name="lake",
        owner_team=team,
        uri=s3.put("lake/part.parquet", artifacts.parquet_bytes(321)),
        schema=artifacts.schema(),
    )
    short = services.dataset_create(
        actor=contributor_principal,
        name="lake-short",
        owner_team=team,
        uri=s3.put("lake/short.csv", artifacts.csv_bytes(10, columns=["age", "label"])),
        schema=artifacts.schema(),
    )
    # when
    run(good)
    run(short)
    # then
    assert good.status == "ready" and good.row_count == 321 and len(good.sha256) == 64
    assert short.status == "invalid"
    assert "income, gender, prediction" in short.status_reason
    assert sorted(s3.object_keys()) == ["refs/lake/part.parquet", "refs/lake/short.csv"]
    assert Dataset.objects.filter(status="ready").count() == 1
