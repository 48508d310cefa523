"""The explainability engine on small real models: shap's own TreeExplainer is the oracle for trees,
the model's own output is the oracle for additivity, and the permutation explainer keeps its budget."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from tests.registry import artifacts
from worker.engines import explain, loaders

# shap warns that its LightGBM output format changed, each time it is asked directly
pytestmark = pytest.mark.filterwarnings("ignore:LightGBM binary classifier with TreeExplainer:UserWarning")

ROWS = 200
NAMES = ["income", "tenure", "balance", "visits", "age", "score"]
ORACLE_TOL = 1e-9


def _data(rows: int = ROWS, features: int = len(NAMES), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features))
    y = (x[:, 0] + 0.5 * x[:, 1] - x[:, 2] * x[:, 3] + rng.normal(scale=0.3, size=rows) > 0).astype(int)
    return x, y


@pytest.fixture(scope="session")
def data() -> tuple[np.ndarray, np.ndarray]:
    return _data()


@pytest.fixture(scope="session")
def models(tmp_path_factory, data) -> dict:
    """kind -> (path, format, the model as trained, its explained output on X as the library computes it)."""
    import lightgbm
    import skops.io as sio
    import xgboost
    from skl2onnx import to_onnx
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = data
    folder = tmp_path_factory.mktemp("explain-models")
    built = {}

    def keep(kind, name, data_bytes, fmt, model, output):
        path = folder / name
        path.write_bytes(data_bytes)
        built[kind] = (path, fmt, model, output)

    rf = RandomForestClassifier(n_estimators=15, max_depth=4, random_state=0).fit(x, y)
    keep("rf", "rf.skops", sio.dumps(rf), "skops", rf, lambda z: rf.predict_proba(z)[:, 1])
    gb = GradientBoostingClassifier(n_estimators=20, max_depth=2, random_state=0).fit(x, y)
    keep("gb", "gb.skops", sio.dumps(gb), "skops", gb, gb.decision_function)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    keep("pipeline", "lr.skops", sio.dumps(pipeline), "skops", pipeline, lambda z: pipeline.predict_proba(z)[:, 1])

    params = {"max_depth": 3, "objective": "binary:logistic", "nthread": 1}
    booster = xgboost.train(params, xgboost.DMatrix(x, label=y), 20)
    margin = lambda z: booster.predict(xgboost.DMatrix(z), output_margin=True)  # noqa: E731
    keep("xgboost", "model.json", bytes(booster.save_raw("json")), "xgboost", booster, margin)
    keep("xgboost_ubj", "model.ubj", bytes(booster.save_raw("ubj")), "xgboost", booster, margin)

    params = {"objective": "binary", "num_leaves": 8, "verbose": -1, "num_threads": 1}
    lgb = lightgbm.train(params, lightgbm.Dataset(x, label=y), 20)
    keep(
        "lightgbm",
        "model.txt",
        lgb.model_to_string().encode(),
        "lightgbm",
        lgb,
        lambda z: lgb.predict(z, raw_score=True),
    )

    import onnxruntime

    def onnx(kind, estimator, output_name, column):
        model = to_onnx(estimator, x[:1].astype(np.float32), options={"zipmap": False} if column else None)
        session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])

        def run(z):
            out = session.run([output_name], {"X": z.astype(np.float32)})[0]
            return out[:, column] if column is not None else out.reshape(-1)

        keep(kind, f"{kind}.onnx", model.SerializeToString(), "onnx", estimator, run)

    # models without trees: ONNX tree ensembles are read into TreeSHAP (tests/worker/test_onnx_treeshap.py)
    onnx("onnx", make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y), "probabilities", 1)
    onnx("onnx_regressor", LinearRegression().fit(x, x[:, 0] - 0.5 * x[:, 1]), "variable", None)
    return built


def _explain(models, kind, x, **options) -> explain.Explanation:
    path, fmt, _, _ = models[kind]
    options = {"sample_size": len(x), "background_size": 20, "max_evals": 26, **options}
    return explain.explain_with_values(path, fmt, x, NAMES[: x.shape[1]], **options)


TREES = ["rf", "gb", "xgboost", "xgboost_ubj", "lightgbm"]
PERMUTATION = ["onnx", "onnx_regressor", "pipeline"]
OUTPUT = {
    "rf": "probability",
    "gb": "log_odds",
    "xgboost": "log_odds",
    "xgboost_ubj": "log_odds",
    "lightgbm": "log_odds",
    "onnx": "probability",
    "onnx_regressor": "raw",
    "pipeline": "probability",
}


# --- trees against shap's TreeExplainer --------------------------------------------------


@pytest.mark.parametrize("kind", TREES)
def test_tree_shap_values_equal_tree_explainer_called_directly(models, data, kind):
    import shap

    # given a tree model saved in its format, and shap's TreeExplainer on the model as trained
    x, _ = data
    _, _, trained, _ = models[kind]
    oracle = shap.TreeExplainer(trained)
    expected = np.asarray(oracle.shap_values(x))
    expected_base = np.ravel(oracle.expected_value)[-1]
    if expected.ndim == 3:
        expected = expected[..., 1]
    # when
    result = _explain(models, kind, x)
    # then every row was explained with TreeSHAP, to the same numbers
    assert result.summary["method"] == "tree" and result.summary["explainer"] == "shap.TreeExplainer"
    assert result.summary["output"] == OUTPUT[kind]
    assert result.rows.tolist() == list(range(ROWS))
    assert np.abs(result.values - expected).max() <= ORACLE_TOL
    assert abs(result.summary["base_value"] - float(expected_base)) <= ORACLE_TOL
    assert result.summary["budget"]["evaluations"] is None and result.summary["budget"]["max_evals"] is None


@pytest.mark.parametrize("kind", TREES + PERMUTATION)
def test_additivity_holds_against_the_models_own_output_and_is_recorded(models, data, kind):
    # given
    x, _ = data
    x = x if kind in TREES else x[:12]
    _, _, _, own_output = models[kind]
    # when
    result = _explain(models, kind, x)
    # then base value + SHAP values give the model's output, as the library computes it
    additivity = result.summary["additivity"]
    assert additivity["checked"] is True and additivity["passed"] is True
    assert additivity["max_abs_error"] <= additivity["tolerance"]
    assert additivity["tolerance"] == additivity["rtol"] * max(1.0, float(np.abs(result.predictions).max()))
    assert additivity["rtol"] == (1e-5 if kind.startswith(("xgboost", "onnx")) else 1e-9)
    reconstructed = result.base_values + result.values.sum(axis=1)
    assert np.abs(reconstructed - own_output(x)).max() <= additivity["tolerance"]
    assert result.summary["output"] == OUTPUT[kind]


def test_a_sklearn_forest_explains_the_positive_class_probability(models, data):
    x, _ = data
    summary = _explain(models, "rf", x[:50]).summary
    assert summary["output"] == "probability"
    assert summary["model"] == {
        "format": "skops",
        "type": "sklearn.ensemble._forest.RandomForestClassifier",
        "positive_class": 1,
    }
    assert all(0.0 <= entry["prediction"] <= 1.0 for entry in summary["local"])


# --- the permutation explainer ------------------------------------------------------------


@pytest.mark.parametrize("max_evals", [13, 26, 40])
def test_the_permutation_explainer_keeps_its_budget_and_reports_progress(models, data, max_evals):
    # given an ONNX model (6 features: a permutation forward and back is 13 coalitions)
    x, _ = data
    seen: list[float] = []
    # when
    result = _explain(models, "onnx", x, sample_size=25, background_size=15, max_evals=max_evals, progress=seen.append)
    # then each row used whole permutations within the budget, and progress rose to 1
    budget = result.summary["budget"]
    per_row = (max_evals // 13) * 13
    assert result.summary["method"] == "permutation"
    assert result.summary["explainer"] == "shap.explainers.PermutationExplainer"
    assert budget["max_evals"] == max_evals and budget["evaluations_per_row"] == per_row <= max_evals
    assert budget["evaluations"] == 25 * per_row
    assert budget["background_size"] == 15 and budget["sample_size"] == 25
    assert 0 < budget["model_rows"] <= budget["evaluations"] * 15
    assert len(seen) > 1 and seen == sorted(seen) and seen[-1] == 1.0 and all(0 < f <= 1 for f in seen)


def test_the_permutation_base_value_is_the_mean_output_over_the_background(models, data):
    x, _ = data
    _, _, _, own_output = models["pipeline"]
    result = _explain(models, "pipeline", x, sample_size=5, background_size=ROWS, max_evals=13)
    assert result.summary["budget"]["background_size"] == ROWS
    assert abs(result.summary["base_value"] - float(own_output(x).mean())) <= 1e-12


def test_a_budget_below_one_permutation_is_refused_in_words(models, data):
    x, _ = data
    with pytest.raises(ValueError, match=r"max_evals=12 is below the smallest budget for 6 feature\(s\).*13"):
        _explain(models, "onnx", x, max_evals=12)


def test_the_default_budget_is_500_coalitions(models, data):
    x, _ = data
    budget = _explain(models, "onnx", x, sample_size=2, max_evals=None).summary["budget"]
    assert budget["max_evals"] == 500 and budget["evaluations_per_row"] == (500 // 13) * 13


# --- the summary --------------------------------------------------------------------------


def test_feature_names_come_from_the_given_list(models, data):
    # given
    x, _ = data
    # when
    result = _explain(models, "xgboost", x)
    summary = result.summary
    # then
    assert summary["feature_names"] == NAMES
    assert sorted(g["feature"] for g in summary["global"]) == sorted(NAMES)
    assert set(summary["beeswarm"]["features"]) == set(NAMES) == set(summary["beeswarm"]["points"])
    assert all({c["feature"] for c in entry["contributions"]} == set(NAMES) for entry in summary["local"])
    header = next(csv.reader(io.StringIO(result.csv_bytes().decode())))
    assert header == ["row", "base_value", "prediction", *NAMES]


@pytest.mark.parametrize("kind", ["lightgbm", "onnx"])
def test_a_named_row_is_explained_locally(models, data, kind):
    import shap

    # given evaluation rows of which 20 are sampled, and row 137 asked for by name
    x, _ = data
    # when
    result = _explain(models, kind, x, sample_size=20, rows=[137], local_count=5)
    local = result.summary["local"]
    # then row 137 is explained, first, with its own feature values, largest contribution first
    assert 137 in result.rows.tolist() and result.summary["n_rows_explained"] == 20
    first = local[0]
    assert first["row"] == 137 and first["requested"] is True
    assert [c["feature"] for c in first["contributions"]] == [
        NAMES[j] for j in np.argsort(-np.abs(result.values[result.rows.tolist().index(137)]), kind="stable")
    ]
    assert {c["feature"]: c["value"] for c in first["contributions"]} == dict(zip(NAMES, x[137].tolist(), strict=True))
    assert abs(first["base_value"] + sum(c["shap"] for c in first["contributions"]) - first["prediction"]) <= 1e-5
    # and four more rows fill the local view, spread over the predictions
    assert len(local) == 5 and [e["requested"] for e in local] == [True, False, False, False, False]
    assert len({e["row"] for e in local}) == 5
    others = sorted(p for row, p in zip(result.rows.tolist(), result.predictions.tolist(), strict=True) if row != 137)
    assert (local[1]["prediction"], local[-1]["prediction"]) == (others[0], others[-1])
    if kind == "lightgbm":  # the same values TreeExplainer gives for that row alone
        _, _, trained, _ = models[kind]
        alone = np.asarray(shap.TreeExplainer(trained).shap_values(x[137:138]))[0]
        shap_of = {c["feature"]: c["shap"] for c in first["contributions"]}
        assert max(abs(shap_of[name] - alone[j]) for j, name in enumerate(NAMES)) <= ORACLE_TOL


def test_a_row_outside_the_evaluation_rows_is_refused(models, data):
    x, _ = data
    with pytest.raises(ValueError, match=r"row 200 is not among the 200 evaluation rows \(0 to 199\)"):
        _explain(models, "xgboost", x, rows=[3, 200])


@pytest.mark.parametrize("kind", ["onnx", "rf"])
def test_the_same_seed_gives_the_same_explanation(models, data, kind):
    # given the global numpy generator in some state
    x, _ = data
    np.random.seed(12345)
    before = np.random.get_state()[1].copy()
    # when explained twice with one seed and once with another
    first = _explain(models, kind, x, sample_size=8, seed=3)
    again = _explain(models, kind, x, sample_size=8, seed=3)
    other = _explain(models, kind, x, sample_size=8, seed=4)
    # then the same seed gives the same summary and values; another seed samples other rows
    assert json.dumps(first.summary) == json.dumps(again.summary)
    assert np.array_equal(first.values, again.values)
    assert first.rows.tolist() != other.rows.tolist()
    # and shap's use of numpy's global generator was put back
    assert np.array_equal(np.random.get_state()[1], before)


@pytest.mark.parametrize("kind", ["gb", "onnx"])
def test_the_global_ranking_is_by_mean_absolute_shap(models, data, kind):
    x, _ = data
    result = _explain(models, kind, x if kind == "gb" else x[:15])
    mean_abs = np.abs(result.values).mean(axis=0)
    ranking = result.summary["global"]
    assert [g["rank"] for g in ranking] == list(range(1, len(NAMES) + 1))
    assert [g["mean_abs_shap"] for g in ranking] == sorted(mean_abs.tolist(), reverse=True)
    assert all(g["mean_abs_shap"] == mean_abs[NAMES.index(g["feature"])] for g in ranking)
    assert result.summary["beeswarm"]["features"] == [g["feature"] for g in ranking]


def test_the_summary_is_strict_json_with_bounded_beeswarm(tmp_path):
    import xgboost

    # given a model on 25 features and 400 evaluation rows, all explained
    x, y = _data(rows=400, features=25, seed=5)
    names = [f"f{i:02d}" for i in range(25)]
    booster = xgboost.train({"max_depth": 3, "objective": "binary:logistic", "nthread": 1}, xgboost.DMatrix(x, y), 10)
    path = tmp_path / "wide.json"
    path.write_bytes(bytes(booster.save_raw("json")))
    x[:, 7] = 1.5  # a constant column has no colour scale
    # when
    summary = explain.explain(path, "xgboost", x, names, sample_size=400)
    # then
    text = json.dumps(summary, allow_nan=False)
    assert json.loads(text) == summary
    assert summary["schema"] == "assay.explain/v1" and summary["n_rows"] == 400 == summary["n_rows_explained"]
    beeswarm = summary["beeswarm"]
    assert len(beeswarm["features"]) == 20
    assert beeswarm["features"] == [g["feature"] for g in summary["global"][:20]]
    assert all(len(points) == 300 for points in beeswarm["points"].values())
    for feature, points in beeswarm["points"].items():
        scaled = [p[0] for p in points]
        if feature == "f07":
            assert scaled == [None] * 300
        else:
            assert all(0.0 <= v <= 1.0 for v in scaled) and min(scaled) == 0.0 and max(scaled) == 1.0
    assert set(summary["engine"]) == {"shap", "numpy", "xgboost"} and summary["engine"]["shap"] == "0.51.0"


def test_the_shap_table_holds_every_explained_row_exactly(models, data):
    x, _ = data
    result = _explain(models, "gb", x, sample_size=30)
    lines = list(csv.reader(io.StringIO(result.csv_bytes().decode())))[1:]
    assert [int(line[0]) for line in lines] == result.rows.tolist()
    table = np.array([[float(v) for v in line[1:]] for line in lines])
    assert np.array_equal(table[:, 0], result.base_values) and np.array_equal(table[:, 1], result.predictions)
    assert np.array_equal(table[:, 2:], result.values)


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["xgboost", "lightgbm", "rf", "onnx"])
def test_a_feature_count_that_does_not_match_the_model_is_refused(models, data, kind):
    x, _ = data
    with pytest.raises(ValueError, match=r"the model expects 6 feature\(s\), the data has 5"):
        _explain(models, kind, x[:, :5])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda x: x[:0], "there are no rows to explain"),
        (lambda x: x[:, 0], r"rows × columns, got shape \(200,\)"),
        (lambda x: np.where(np.arange(len(x))[:, None] % 50 == 0, np.nan, x), r"missing or infinite.*income \(4 row"),
        (lambda x: np.where(x > 2.5, np.inf, x), "missing or infinite values"),
        (lambda x: x.astype(str).astype(object) + "€", "not all numbers"),
    ],
)
def test_unusable_feature_rows_are_refused_in_words(models, data, change, message):
    x, _ = data
    path, fmt, _, _ = models["xgboost"]
    with pytest.raises(ValueError, match=message):
        explain.explain(path, fmt, change(x), NAMES)


def test_feature_names_that_do_not_fit_are_refused(models, data):
    x, _ = data
    path, fmt, _, _ = models["xgboost"]
    with pytest.raises(ValueError, match=r"5 feature name\(s\) were given for 6 feature column\(s\)"):
        explain.explain(path, fmt, x, NAMES[:5])
    with pytest.raises(ValueError, match="feature names must be distinct; repeated: income"):
        explain.explain(path, fmt, x, ["income", *NAMES[:5]])


def test_a_model_trained_on_other_feature_names_is_refused(tmp_path, data):
    import pandas as pd
    import skops.io as sio
    from sklearn.tree import DecisionTreeRegressor

    # given a regression tree fitted on named columns, in another order
    x, _ = data
    tree = DecisionTreeRegressor(max_depth=3).fit(pd.DataFrame(x, columns=NAMES[::-1]), x[:, 0])
    path = tmp_path / "tree.skops"
    path.write_bytes(sio.dumps(tree))
    # when / then
    with pytest.raises(ValueError, match="trained on features named score, age, visits"):
        explain.explain(path, "skops", x, NAMES)
    # and with the names in its order, its raw output is explained by TreeSHAP
    summary = explain.explain(path, "skops", x, NAMES[::-1], sample_size=20)
    assert (summary["method"], summary["output"], summary["additivity"]["passed"]) == ("tree", "raw", True)
    assert summary["model"]["positive_class"] is None


@pytest.mark.parametrize(
    ("fmt", "payload", "message"),
    [
        ("xgboost", artifacts.random_bytes(), "XGBoost cannot load the model: .*Invalid model format"),
        ("lightgbm", b"tree\nnot a model\n", "LightGBM cannot load the model: "),
        ("onnx", artifacts.unloadable_onnx_bytes(), "ONNX checker rejected the model: "),
        ("skops", artifacts.random_bytes(), "not a readable skops file: "),
        ("pickle", artifacts.pickle_bytes(), "no way to explain a model of format 'pickle'"),
    ],
)
def test_a_model_that_does_not_load_is_a_load_error(tmp_path, data, fmt, payload, message):
    x, _ = data
    path = tmp_path / "model.bin"
    path.write_bytes(payload)
    with pytest.raises(loaders.LoadError, match=message) as refused:
        explain.explain(path, fmt, x, NAMES)
    assert "Stack trace" not in str(refused.value)


def test_an_untrusted_skops_type_is_refused_by_name_never_loaded(tmp_path, data):
    import skops.io as sio

    # given a skops file that refers to a custom function nobody trusted
    x, _ = data
    path = tmp_path / "custom.skops"
    path.write_bytes(artifacts.untrusted_skops_bytes())
    untrusted = sorted(t for t in sio.get_untrusted_types(file=str(path)) if t not in loaders.TRUSTED_SKOPS_TYPES)
    assert untrusted == ["tests.registry.artifacts.double"]
    # when / then the refusal names every untrusted type
    with pytest.raises(loaders.LoadError, match="the skops file holds types that are not trusted: ") as refused:
        explain.explain(path, "skops", x[:, :4], NAMES[:4])
    assert str(refused.value).endswith(", ".join(untrusted))


def test_a_multiclass_model_is_refused_in_words(tmp_path, data):
    import skops.io as sio
    from sklearn.ensemble import RandomForestClassifier

    x, _ = data
    forest = RandomForestClassifier(n_estimators=3, max_depth=2, random_state=0).fit(x, np.arange(len(x)) % 3)
    path = tmp_path / "three.skops"
    path.write_bytes(sio.dumps(forest))
    with pytest.raises(ValueError, match="only binary classifiers and single-output models.*3 classes"):
        explain.explain(path, "skops", x, NAMES)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("sample_size", 0, "sample_size must be a whole number of rows, at least 1; got 0"),
        ("background_size", 2.5, "background_size must be a whole number of rows"),
        ("local_count", -1, "local_count must be a whole number, 0 or more"),
    ],
)
def test_unusable_options_are_refused(models, data, option, value, message):
    x, _ = data
    path, fmt, _, _ = models["lightgbm"]
    with pytest.raises(ValueError, match=message):
        explain.explain(path, fmt, x, NAMES, **{option: value})


def test_an_onnx_classifier_without_a_probabilities_tensor_is_refused_in_words(tmp_path, data):
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    # given a classifier converted with skl2onnx's default ZipMap (probabilities as a list of maps)
    x, y = data
    path = tmp_path / "zipmap.onnx"
    path.write_bytes(to_onnx(LogisticRegression().fit(x, y), x[:1].astype(np.float32)).SerializeToString())
    # when / then
    expected = r"needs one float output .* zipmap=False.*it has output_label tensor\(int64\), output_probability seq"
    with pytest.raises(ValueError, match=expected):
        explain.explain(path, "onnx", x, NAMES)


def test_an_onnx_classifier_of_three_classes_is_refused_in_words(tmp_path, data):
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    x, _ = data
    model = LogisticRegression().fit(x, np.arange(len(x)) % 3)
    path = tmp_path / "three.onnx"
    path.write_bytes(to_onnx(model, x[:1].astype(np.float32), options={"zipmap": False}).SerializeToString())
    with pytest.raises(
        ValueError, match="only binary classifiers and single-output models can be explained; 3 classes"
    ):
        explain.explain(path, "onnx", x, NAMES)


def test_warm_up_compiles_without_touching_numpys_global_generator():
    np.random.seed(7)
    before = np.random.get_state()[1].copy()
    explain.warm_up()
    assert np.array_equal(np.random.get_state()[1], before)


def test_a_tree_model_shap_cannot_read_is_refused_in_words(tmp_path, data):
    import skops.io as sio
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    x, y = data
    boosted = GradientBoostingClassifier(n_estimators=3, init=LogisticRegression()).fit(x, y)
    path = tmp_path / "init.skops"
    path.write_bytes(sio.dumps(boosted))
    with pytest.raises(ValueError, match="shap's TreeExplainer cannot read this .*GradientBoostingClassifier model"):
        explain.explain(path, "skops", x, NAMES)


@pytest.mark.parametrize(
    ("kind", "algorithm", "source"),
    [
        ("gb", "tree_path_dependent", "native"),
        ("xgboost", "tree_path_dependent", "native"),
        ("onnx", "permutation", None),
    ],
)
def test_the_summary_names_the_algorithm_that_ran(models, data, kind, algorithm, source):
    x, _ = data
    summary = _explain(models, kind, x[:6]).summary
    assert summary["algorithm"] == algorithm and summary["tree_source"] == source
    assert summary["tree_refusal"] is None
