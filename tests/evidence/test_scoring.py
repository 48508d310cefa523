"""Bias runs that score the model: a version's real artifact is run on its evaluation dataset's feature columns."""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pyarrow.csv as pacsv
import pytest
from django.conf import settings

from apps.core.errors import ValidationFailed
from apps.demo import artifacts as demo
from apps.evidence import services
from apps.evidence.models import EvidenceRun
from apps.registry import services as registry
from tests.evidence.conftest import SCHEMA
from tests.registry.fixtures import job_of, upload
from worker.engines import bias

pytestmark = pytest.mark.django_db

FEATURES = ["income", "tenure", "balance", "visits"]


def _as_read(data: demo.DemoData) -> tuple[dict, np.ndarray]:
    """The dataset's columns as its CSV holds them (features rounded as written), like any reader would see them."""
    table = pacsv.read_csv(io.BytesIO(data.csv_bytes()))
    features = np.column_stack([table.column(name).to_numpy().astype(np.float64) for name in data.columns])
    return {name: table.column(name).to_pylist() for name in table.column_names}, features


def _expected(data: demo.DemoData, predictions: np.ndarray) -> dict:
    columns, _ = _as_read(data)
    return bias.bias_summary(columns["label"], predictions, {"sex": columns["sex"], "age_band": columns["age_band"]})


def _onnx_predictions(model: bytes, features: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return session.run(["label"], {name: features.astype(np.float32)})[0]


def _skops_predictions(model: bytes, features: np.ndarray) -> np.ndarray:
    import skops.io as sio

    estimator = sio.loads(model, trusted=sio.get_untrusted_types(data=model))
    return estimator.predict(features)


@pytest.mark.parametrize(
    ("fmt", "build", "predict"),
    [
        ("onnx", demo.onnx_logistic, _onnx_predictions),
        ("skops", demo.skops_gradient_boosting, _skops_predictions),
    ],
)
def test_a_version_with_a_model_is_scored_on_the_feature_columns(
    fmt, build, predict, contributor_principal, unscored, loaded_version, run
):
    # given a real model and an evaluation dataset with features, label and sensitive columns, no predictions
    data = demo.make_data(11, FEATURES, rows=300)
    artifact = build(data)
    dataset = unscored(data)
    version = loaded_version(artifact, fmt, dataset)
    # when the bias report is asked for without naming a prediction column, and a worker runs it
    evidence = services.evidence_request(actor=contributor_principal, kind="bias", version=version).run
    assert evidence.parameters["predictions"] == "model"
    assert evidence.parameters["feature_columns"] == FEATURES
    assert "prediction_column" not in evidence.parameters
    assert evidence.input_digests["model_version"] == version.sha256
    assert run(evidence.job_id) == "succeeded"
    # then the run succeeded with the engine's summary of the model's own predictions
    evidence.refresh_from_db()
    assert evidence.status == "succeeded", evidence.error
    _, features = _as_read(data)
    predictions = predict(artifact, features)
    assert len(set(predictions.tolist())) == 2  # the model says yes to some and no to others
    assert evidence.summary == _expected(data, predictions)
    assert evidence.summary["n_rows"] == 300
    assert {"onnxruntime", "skops"} & set(evidence.engine_versions)
    evidence.job.refresh_from_db()
    assert evidence.job.progress == 100


def test_a_model_expecting_other_features_fails_the_run_in_words(contributor_principal, unscored, loaded_version, run):
    # given a model trained on four features, evaluated on a dataset with three feature columns
    model = demo.onnx_logistic(demo.make_data(11, FEATURES))
    dataset = unscored(demo.make_data(12, FEATURES[:3]), name="narrow")
    version = loaded_version(model, "onnx", dataset)
    evidence = services.evidence_request(actor=contributor_principal, kind="bias", version=version).run
    # when
    assert run(evidence.job_id) == "succeeded"
    # then the run failed, saying why
    evidence.refresh_from_db()
    assert evidence.status == "failed" and evidence.summary is None
    assert "the model cannot score the dataset's 3 feature column(s) (income, tenure, balance)" in evidence.error
    assert "expects 4 feature(s), the data has 3" in evidence.error
    assert "Traceback" not in evidence.error


def test_artifact_bytes_changed_in_storage_fail_the_run(contributor_principal, unscored, loaded_version, run):
    # given a verified version whose stored bytes are swapped afterwards
    data = demo.make_data(11, FEATURES)
    version = loaded_version(demo.onnx_logistic(data), "onnx", unscored(data))
    evidence = services.evidence_request(actor=contributor_principal, kind="bias", version=version).run
    path = Path(urlparse(settings.ASSAY_STORAGE_URL).path) / version.artifact_uri
    path.write_bytes(demo.onnx_logistic(data, seed=1) + b"\0")
    # when
    assert run(evidence.job_id) == "succeeded"
    # then
    evidence.refresh_from_db()
    assert evidence.status == "failed"
    assert evidence.error.startswith("the model artifact's bytes changed since the run was requested")


def test_a_prediction_column_is_still_used_when_the_dataset_has_one(contributor_principal, team, loaded_version, run):
    # given a dataset holding predictions, evaluated by a version with a model
    data = demo.make_data(11, FEATURES)
    given = np.zeros(len(data.y), dtype=np.int64)
    given[::3] = 1
    dataset = registry.dataset_create(
        actor=contributor_principal,
        name="scored",
        owner_team=team,
        file=upload(data.csv_bytes(given), "scored.csv"),
        schema=data.schema(with_prediction=True),
    )
    run(job_of(dataset).pk)
    version = loaded_version(demo.onnx_logistic(data), "onnx", dataset)
    # when
    evidence = services.evidence_request(actor=contributor_principal, kind="bias", version=version).run
    run(evidence.job_id)
    # then the dataset's predictions are counted, not the model's
    evidence.refresh_from_db()
    assert evidence.parameters["prediction_column"] == "prediction" and "predictions" not in evidence.parameters
    assert evidence.summary == _expected(data, given)


def test_a_dataset_subject_without_predictions_is_refused(contributor_principal, unscored):
    dataset = unscored(demo.make_data(11, FEATURES))
    with pytest.raises(ValidationFailed) as refused:
        services.evidence_request(actor=contributor_principal, kind="bias", dataset_id=dataset.pk)
    assert "has no prediction column" in str(refused.value.detail)
    assert "ask for the report on a model version" in str(refused.value.detail)
    assert EvidenceRun.objects.count() == 0


def test_a_predictions_only_version_on_a_dataset_without_predictions_is_refused(
    contributor_principal, version, unscored
):
    # given the predictions-only version 1 of 'churn', and another dataset without predictions
    dataset = unscored(demo.make_data(11, FEATURES))
    with pytest.raises(ValidationFailed) as refused:
        services.evidence_request(actor=contributor_principal, kind="bias", version=version, dataset_id=dataset.pk)
    assert "holds predictions only" in str(refused.value.detail)
    assert f"dataset {dataset.pk} has no prediction column" in str(refused.value.detail)
    assert EvidenceRun.objects.count() == 0


def test_a_dataset_without_feature_columns_cannot_be_scored(contributor_principal, make_dataset, loaded_version):
    schema = [c for c in SCHEMA if c["role"] not in ("prediction", "feature")]
    dataset = make_dataset(schema=schema, columns=[c["name"] for c in schema], name="bare")
    version = loaded_version(demo.onnx_logistic(demo.make_data(11, FEATURES)), "onnx", dataset)
    with pytest.raises(ValidationFailed) as refused:
        services.evidence_request(actor=contributor_principal, kind="bias", version=version)
    assert "nor feature columns (role feature)" in str(refused.value.detail)
