"""Explainability runs end to end: a real model version explained on its evaluation dataset by a worker."""

from __future__ import annotations

import io

import pyarrow.csv as pacsv
import pytest

from apps.demo import artifacts as demo
from apps.evidence import services
from apps.evidence.models import EvidenceFile
from tests.evidence.conftest import read_download

pytestmark = pytest.mark.django_db

FEATURES = ["income", "tenure", "balance", "visits"]


def _features_of(data: demo.DemoData) -> list[list[float]]:
    table = pacsv.read_csv(io.BytesIO(data.csv_bytes()))
    return [[float(v) for v in row] for row in zip(*(table.column(n).to_pylist() for n in FEATURES), strict=True)]


def test_a_tree_model_is_explained_with_treeshap_and_its_named_row_locally(
    contributor_principal, contributor, unscored, loaded_version, run, api_client_for, client
):
    # given a gradient-boosting version (skops) evaluated on 300 rows with four feature columns
    data = demo.make_data(11, FEATURES, rows=300)
    version = loaded_version(demo.skops_gradient_boosting(data), "skops", unscored(data))
    # when its explainability report is asked for, with row 17 explained locally
    evidence = services.evidence_request(
        actor=contributor_principal,
        kind="explainability",
        version=version,
        parameters={"rows": [17], "sample_size": 120, "local_count": 3},
    ).run
    assert evidence.parameters["feature_columns"] == FEATURES
    assert run(evidence.job_id) == "succeeded"
    # then TreeSHAP explained the sampled rows, additivity held, and the feature names are the schema's
    evidence.refresh_from_db()
    assert evidence.status == "succeeded", evidence.error
    summary = evidence.summary
    assert summary["schema"] == "assay.explain/v1" and summary["method"] == "tree"
    assert summary["feature_names"] == FEATURES
    assert summary["additivity"]["checked"] and summary["additivity"]["passed"]
    assert summary["n_rows_explained"] == 120
    assert sorted(g["feature"] for g in summary["global"]) == sorted(FEATURES)
    assert "shap" in evidence.engine_versions
    # and row 17 of the dataset is explained with its own feature values
    [mine] = [item for item in summary["local"] if item["dataset_row"] == 17]
    values = {c["feature"]: c["value"] for c in mine["contributions"]}
    assert [values[f] for f in FEATURES] == pytest.approx(_features_of(data)[17])
    total = mine["base_value"] + sum(c["shap"] for c in mine["contributions"])
    assert total == pytest.approx(mine["prediction"], abs=1e-6)
    # and the SHAP table downloads with one line per explained row, by dataset row number
    file = EvidenceFile.objects.get(run=evidence)
    assert file.name == "shap_values.csv"
    cora = api_client_for(contributor)
    response = cora.get(f"/api/v1/evidence/{evidence.public_id}/files/shap_values.csv/")
    preamble, rows = read_download(b"".join(response.streaming_content))
    assert preamble["run"] == str(evidence.public_id) and preamble["artifact sha256"] == evidence.version.sha256
    assert len(rows) == 120 and "17" in {r["row"] for r in rows}
    line = next(r for r in rows if r["row"] == "17")
    assert float(line["base_value"]) + sum(float(line[f]) for f in FEATURES) == pytest.approx(
        float(line["prediction"]), abs=1e-6
    )
    # and the report page draws the importance bars, the beeswarm and a waterfall per local row
    client.force_login(contributor)
    page = client.get(f"/evidence/{evidence.public_id}/").content.decode()
    assert 'aria-label="Feature importance"' in page and 'aria-label="Beeswarm of SHAP values"' in page
    assert 'aria-label="Waterfall for row 17"' in page
    assert page.count('class="card local-explanation"') == len(summary["local"])


def test_an_onnx_model_is_explained_by_permutation_within_its_budget(
    contributor_principal, unscored, loaded_version, run
):
    # given a logistic regression exported to ONNX
    data = demo.make_data(11, FEATURES, rows=200)
    version = loaded_version(demo.onnx_logistic(data), "onnx", unscored(data))
    # when it is explained on 20 rows with at most 9 model evaluations per row
    evidence = services.evidence_request(
        actor=contributor_principal,
        kind="explainability",
        version=version,
        parameters={"sample_size": 20, "background_size": 10, "max_evals": 9},
    ).run
    assert run(evidence.job_id) == "succeeded"
    # then the permutation explainer ran within that budget and its additivity was checked
    evidence.refresh_from_db()
    assert evidence.status == "succeeded", evidence.error
    summary = evidence.summary
    assert summary["method"] == "permutation" and summary["output"] == "probability"
    assert summary["algorithm"] == "permutation" and summary["tree_refusal"] is None
    assert summary["budget"]["max_evals"] == 9 and summary["budget"]["evaluations_per_row"] <= 9
    assert summary["additivity"]["checked"] and summary["additivity"]["passed"]
    assert "onnxruntime" in evidence.engine_versions


def _onnx_gradient_boosting(data: demo.DemoData) -> bytes:
    from skl2onnx import to_onnx
    from sklearn.ensemble import GradientBoostingClassifier

    model = GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=0).fit(data.X, data.y)
    return to_onnx(model, data.X[:1], options={"zipmap": False}, target_opset=17).SerializeToString()


def test_an_onnx_tree_model_is_explained_with_treeshap_on_the_trees_in_its_graph(
    contributor_principal, contributor, unscored, loaded_version, run, client
):
    # given a gradient-boosting classifier uploaded as ONNX (skl2onnx's TreeEnsembleClassifier)
    data = demo.make_data(11, FEATURES, rows=200)
    version = loaded_version(_onnx_gradient_boosting(data), "onnx", unscored(data))
    # when its explainability report is asked for
    evidence = services.evidence_request(
        actor=contributor_principal,
        kind="explainability",
        version=version,
        parameters={"rows": [5], "sample_size": 80, "background_size": 40},
    ).run
    assert run(evidence.job_id) == "succeeded"
    # then interventional TreeSHAP ran on the trees read from the graph, against 40 background rows
    evidence.refresh_from_db()
    assert evidence.status == "succeeded", evidence.error
    summary = evidence.summary
    assert summary["method"] == "tree" and summary["explainer"] == "shap.TreeExplainer"
    assert summary["algorithm"] == "tree_interventional" and summary["tree_source"] == "onnx"
    assert summary["output"] == "log_odds"
    assert summary["model"] == {"format": "onnx", "type": "onnx.TreeEnsembleClassifier", "positive_class": 1}
    assert summary["budget"]["background_size"] == 40 and summary["budget"]["max_evals"] is None
    assert summary["n_rows_explained"] == 80
    # and the SHAP values add up to the graph's own margin for every explained row
    assert summary["additivity"]["checked"] and summary["additivity"]["passed"]
    [mine] = [item for item in summary["local"] if item["dataset_row"] == 5]
    total = mine["base_value"] + sum(c["shap"] for c in mine["contributions"])
    assert total == pytest.approx(mine["prediction"], abs=1e-5)
    # and the report page says which algorithm ran
    client.force_login(contributor)
    page = client.get(f"/evidence/{evidence.public_id}/").content.decode()
    assert "interventional TreeSHAP on the trees read from the ONNX graph" in page


def test_explaining_needs_a_sound_budget_and_existing_rows(contributor_principal, unscored, loaded_version):
    from apps.core.errors import ValidationFailed

    data = demo.make_data(11, FEATURES, rows=50)
    version = loaded_version(demo.onnx_logistic(data), "onnx", unscored(data))
    for parameters, words in (
        ({"max_evals": 3}, "max_evals"),
        ({"rows": [50]}, "has 50 rows; no row 50"),
        ({"rows": ["seven"]}, "rows:"),
        ({"depth": 3}, "Unknown parameter"),
    ):
        with pytest.raises(ValidationFailed) as refused:
            services.evidence_request(
                actor=contributor_principal, kind="explainability", version=version, parameters=parameters
            )
        assert words in str(refused.value.detail)
