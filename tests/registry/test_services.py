"""Registry services: one call, its outcome, its audit events and its scheduled verification."""

from __future__ import annotations

import pytest

from apps.accounts.principals import principal_for_service_account
from apps.core.errors import Conflict, Denied, InvalidTransition, ValidationFailed
from apps.jobs.models import Job, JobStatus
from apps.registry import services
from apps.registry.choices import VersionStatus
from apps.registry.models import ModelVersion, RegisteredModel
from tests.factories.accounts import ServiceAccountFactory
from tests.factories.registry import DatasetFactory
from tests.registry import artifacts
from tests.registry.fixtures import stored_files, upload

pytestmark = pytest.mark.django_db


# ---------------------------------------------------------------------------------------------
# Models


def test_a_contributor_registers_a_model_for_their_team(contributor_principal, team, audit_mark):
    # given
    mark = audit_mark()
    # when
    model = services.model_create(
        actor=contributor_principal,
        name="credit-scoring",
        owner_team=team,
        risk_tier="high",
        data_categories=["personal", "financial"],
        jurisdictions=["EU"],
    )
    # then
    assert model.owner_team == team and model.created_by_id == contributor_principal.id
    events = mark.new()
    assert [e.action for e in events] == ["model.created"]
    assert events[0].after["risk_tier"] == "high" and events[0].actor_id == str(contributor_principal.id)


def test_a_contributor_cannot_register_a_model_for_another_team(contributor_principal, other_team):
    with pytest.raises(Denied):
        services.model_create(actor=contributor_principal, name="ads", owner_team=other_team)
    assert not RegisteredModel.objects.filter(name="ads").exists()


def test_model_names_are_unique(contributor_principal, model):
    with pytest.raises(Conflict):
        services.model_create(actor=contributor_principal, name=model.name, owner_team=model.owner_team)


def test_an_update_is_audited_with_before_and_after(contributor_principal, model, audit_mark):
    # given
    mark = audit_mark()
    # when
    services.model_update(
        actor=contributor_principal, name=model.name, changes={"risk_tier": "high", "description": "A model under test"}
    )
    # then: only what changed is recorded
    events = mark.new()
    assert [e.action for e in events] == ["model.updated"]
    assert events[0].before == {"risk_tier": "limited"} and events[0].after == {"risk_tier": "high"}


def test_a_model_name_cannot_change(contributor_principal, model, audit_mark):
    mark = audit_mark()
    with pytest.raises(ValidationFailed, match="cannot be changed"):
        services.model_update(actor=contributor_principal, name=model.name, changes={"name": "renamed"})
    model.refresh_from_db()
    assert model.name == "churn" and mark.new() == []


# ---------------------------------------------------------------------------------------------
# Versions


def test_versions_are_numbered_per_model(contributor_principal, model, team):
    # given
    other = services.model_create(actor=contributor_principal, name="fraud", owner_team=team)
    # when
    first = services.version_create(
        actor=contributor_principal, model_name="churn", artifact=upload(artifacts.onnx_bytes(0))
    )
    second = services.version_create(
        actor=contributor_principal, model_name="churn", artifact=upload(artifacts.onnx_bytes(1))
    )
    elsewhere = services.version_create(
        actor=contributor_principal, model_name=other.name, artifact=upload(artifacts.onnx_bytes(0))
    )
    # then
    assert (first.number, second.number, elsewhere.number) == (1, 2, 1)


def test_a_version_upload_is_stored_hashed_audited_and_queued_for_verification(
    contributor_principal, model, audit_mark
):
    # given
    data = artifacts.onnx_bytes()
    mark = audit_mark()
    # when
    version = services.version_create(
        actor=contributor_principal,
        model_name="churn",
        artifact=upload(data),
        metrics={"auc": 0.91},
        source_commit="abc123",
    )
    # then
    import hashlib

    version.refresh_from_db()
    assert version.status == VersionStatus.PENDING_VERIFICATION
    assert version.format == "onnx" and version.size == len(data)
    assert version.sha256 == hashlib.sha256(data).hexdigest()
    assert stored_files() == [version.artifact_uri] and version.artifact_uri.startswith("artifacts/")
    events = mark.new()
    assert [e.action for e in events] == ["model_version.created"]
    assert events[0].artifact_sha256 == version.sha256
    job = Job.objects.get(pk=version.verification_job_id)
    assert (job.kind, job.status, job.params) == (
        "registry.verify_version",
        JobStatus.QUEUED,
        {"version_id": version.pk},
    )


def test_the_same_artifact_twice_is_a_conflict_naming_the_existing_version(contributor_principal, model):
    # given
    data = artifacts.onnx_bytes()
    services.version_create(actor=contributor_principal, model_name="churn", artifact=upload(data))
    files_before = stored_files()
    # when
    with pytest.raises(services.DuplicateArtifact) as refused:
        services.version_create(actor=contributor_principal, model_name="churn", artifact=upload(data))
    # then
    assert refused.value.extra["existing_version"] == 1
    assert refused.value.extra["existing_version_url"].endswith("/api/v1/models/churn/versions/1/")
    assert ModelVersion.objects.filter(model=model).count() == 1
    assert stored_files() == files_before


def test_an_invalid_version_does_not_block_registering_its_bytes_again(contributor_principal, model):
    # given
    data = artifacts.onnx_bytes()
    first = services.version_create(actor=contributor_principal, model_name="churn", artifact=upload(data))
    ModelVersion.objects.filter(pk=first.pk).update(status=VersionStatus.INVALID)
    # when
    again = services.version_create(actor=contributor_principal, model_name="churn", artifact=upload(data))
    # then
    assert again.number == 2


def test_a_service_account_registers_on_behalf_of_its_owner(model, system, team):
    # given
    from apps.rbac import services as rbac

    account = ServiceAccountFactory(name="ci-churn", team=team)
    rbac.role_grant(actor=system, subject=account, role="contributor", team=team)
    actor = principal_for_service_account(account)
    # when
    version = services.version_create(actor=actor, model_name="churn", artifact=upload(artifacts.lightgbm_bytes()))
    # then
    assert version.created_by_id == account.owner_id
    assert version.created_by_service_account_id == account.pk


def test_a_predictions_only_version_needs_an_evaluation_dataset_with_predictions(contributor_principal, model, team):
    # given
    without = DatasetFactory(owner_team=team, schema=[{"name": "x", "type": "", "role": "feature"}])
    with_predictions = DatasetFactory(owner_team=team, schema=artifacts.schema())
    # when / then
    with pytest.raises(ValidationFailed, match="evaluation dataset"):
        services.version_create(actor=contributor_principal, model_name="churn", format="predictions_only")
    with pytest.raises(ValidationFailed, match="prediction"):
        services.version_create(
            actor=contributor_principal,
            model_name="churn",
            format="predictions_only",
            evaluation_dataset_id=without.pk,
        )
    version = services.version_create(
        actor=contributor_principal,
        model_name="churn",
        format="predictions_only",
        evaluation_dataset_id=with_predictions.pk,
    )
    assert version.format == "predictions_only" and version.sha256 == "" and version.artifact_uri == ""


def test_lineage_datasets_must_be_visible(contributor_principal, model, other_team):
    hidden = DatasetFactory(owner_team=other_team)
    with pytest.raises(ValidationFailed, match=str(hidden.pk)):
        services.version_create(
            actor=contributor_principal,
            model_name="churn",
            artifact=upload(artifacts.onnx_bytes()),
            training_dataset_ids=[hidden.pk],
        )
    assert stored_files() == []


def test_retiring_a_version_is_audited_once(contributor_principal, model, audit_mark):
    # given
    version = services.version_create(
        actor=contributor_principal, model_name="churn", artifact=upload(artifacts.onnx_bytes())
    )
    mark = audit_mark()
    # when
    services.version_retire(actor=contributor_principal, model_name="churn", number=version.number, reason="superseded")
    # then
    version.refresh_from_db()
    assert version.status == VersionStatus.RETIRED
    assert mark.actions() == ["model_version.retired"]
    with pytest.raises(InvalidTransition):
        services.version_retire(actor=contributor_principal, model_name="churn", number=version.number)


# ---------------------------------------------------------------------------------------------
# Datasets


def test_a_dataset_upload_keeps_its_declared_roles(contributor_principal, team, audit_mark):
    # given
    mark = audit_mark()
    # when
    dataset = services.dataset_create(
        actor=contributor_principal,
        name="applications-2025",
        owner_team=team,
        file=upload(artifacts.parquet_bytes(), "x.parquet"),
        schema=artifacts.schema(),
    )
    # then
    assert dataset.format == "parquet" and dataset.size and len(dataset.sha256) == 64
    assert {c["name"]: c["role"] for c in dataset.schema}["gender"] == "sensitive"
    assert stored_files() == [dataset.uri] and dataset.uri.startswith("datasets/")
    assert mark.actions() == ["dataset.created"]
    assert Job.objects.get(pk=dataset.verification_job_id).kind == "registry.verify_dataset"


def test_a_dataset_without_a_schema_gets_its_columns_as_features(contributor_principal, team):
    dataset = services.dataset_create(
        actor=contributor_principal, name="raw", owner_team=team, file=upload(artifacts.jsonl_bytes())
    )
    assert dataset.format == "jsonl"
    assert [c["name"] for c in dataset.schema] == artifacts.COLUMNS
    assert {c["role"] for c in dataset.schema} == {"feature"}


def test_an_unknown_column_role_is_refused(contributor_principal, team):
    with pytest.raises(ValidationFailed, match="role"):
        services.dataset_create(
            actor=contributor_principal,
            name="raw",
            owner_team=team,
            file=upload(artifacts.csv_bytes()),
            schema=[{"name": "age", "role": "secret"}],
        )
    assert stored_files() == []
