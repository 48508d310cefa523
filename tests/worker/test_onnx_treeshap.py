"""Tree models uploaded as ONNX are explained with TreeSHAP: the trees are read out of the graph.

The oracle is ``shap.TreeExplainer(original_model, data=background,
feature_perturbation="interventional")`` on the model as trained (scikit-learn, XGBoost, LightGBM), with
the same background rows; the explanation of the ONNX upload must give the same SHAP values to
1e-9. Graphs come from skl2onnx where it converts the model, and otherwise are written here
with ``onnx.helper`` from the trained trees (the XGBoost and LightGBM trees, the ``TreeEnsemble`` operator of
ai.onnx.ml opset 5, averaged forests, the other branch modes).

The features are multiples of 1/8. scikit-learn splits halfway between two values it saw, so
every threshold is a multiple of 1/16: a float32 number, which the ONNX graph stores exactly.
(With arbitrary data, an ONNX float32 threshold may round up past a row's value that the
float64 threshold of the original still sends left.) The base value is compared to float32
resolution: the graph stores the initial score of gradient boosting as a float32 number.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from worker.engines import explain, onnx_trees

NAMES = ["income", "tenure", "balance", "visits"]
ROWS = 120
ORACLE_TOL = 1e-9
BASE_RTOL = 1e-7  # a float32 base value


def _data(seed: int = 0, rows: int = ROWS) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(size=(rows, len(NAMES))) * 8) / 8
    y = (x[:, 0] + 0.5 * x[:, 1] - x[:, 2] * x[:, 3] + rng.normal(scale=0.3, size=rows) > 0).astype(int)
    return x, y


def _oracle(model, x: np.ndarray, background: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import shap

    explainer = shap.TreeExplainer(model, data=background, feature_perturbation="interventional")
    return np.asarray(explainer.shap_values(x, check_additivity=False)), np.ravel(explainer.expected_value)


def _explained(tmp_path, graph, x: np.ndarray, **options) -> explain.Explanation:
    """The engine's explanation of every row, with every row as background (so the oracle can use the same)."""
    path = tmp_path / "model.onnx"
    path.write_bytes(graph.SerializeToString())
    options = {"sample_size": len(x), "background_size": len(x), **options}
    return explain.explain_with_values(path, "onnx", x, NAMES, **options)


def _skl2onnx(model, x: np.ndarray):
    from skl2onnx import to_onnx

    options = {"zipmap": False} if hasattr(model, "classes_") else None
    return to_onnx(model, x[:1].astype(np.float32), options=options, target_opset={"": 17, "ai.onnx.ml": 3})


# --- graphs written with onnx.helper from the trained trees -------------------------------------


def _graph(node, n_outputs: int, ml_opset: int = 3, dtype: int = 1):
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [node],
        "trees",
        [helper.make_tensor_value_info("X", dtype, [None, len(NAMES)])],
        [
            helper.make_tensor_value_info(o, TensorProto.INT64, [None])
            if o == "label"
            else helper.make_tensor_value_info(o, dtype, [None, n_outputs])
            for o in node.output
        ],
    )
    opsets = [helper.make_opsetid("", 21), helper.make_opsetid("ai.onnx.ml", ml_opset)]
    return helper.make_model(graph, opset_imports=opsets)


def _legacy_regressor(trees, *, aggregate: str = "SUM", base: float = 0.0, scale: float = 1.0, mode: str = "LEQ"):
    """A TreeEnsembleRegressor of scikit-learn trees (``tree_`` objects); ``mode`` rewrites every split.

    GT: ``x > t`` with the children swapped; GTE: ``x >= t'`` with t' the next float32 above t
    and the children swapped (for float32 x the same test as ``x > t``).
    """
    from onnx import helper

    nodes = {k: [] for k in ("treeids", "nodeids", "featureids", "modes", "values", "truenodeids", "falsenodeids")}
    targets = {k: [] for k in ("treeids", "nodeids", "ids", "weights")}
    for t, tree in enumerate(trees):
        for i in range(tree.node_count):
            leaf = tree.children_left[i] < 0
            left, right, threshold = int(tree.children_left[i]), int(tree.children_right[i]), float(tree.threshold[i])
            true, false, name = (left, right, "BRANCH_LEQ")
            if not leaf and mode == "GT":
                true, false, name = right, left, "BRANCH_GT"
            elif not leaf and mode == "GTE":
                threshold = float(np.nextafter(np.float32(threshold), np.float32(np.inf)))
                true, false, name = right, left, "BRANCH_GTE"
            for key, value in (
                ("treeids", t),
                ("nodeids", i),
                ("featureids", max(0, int(tree.feature[i]))),
                ("modes", "LEAF" if leaf else name),
                ("values", 0.0 if leaf else threshold),
                ("truenodeids", 0 if leaf else true),
                ("falsenodeids", 0 if leaf else false),
            ):
                nodes[key].append(value)
            if leaf:
                for key, value in (
                    ("treeids", t),
                    ("nodeids", i),
                    ("ids", 0),
                    ("weights", float(tree.value[i, 0, 0] * scale)),
                ):
                    targets[key].append(value)
    node = helper.make_node(
        "TreeEnsembleRegressor",
        ["X"],
        ["Y"],
        domain="ai.onnx.ml",
        n_targets=1,
        aggregate_function=aggregate,
        base_values=[base],
        post_transform="NONE",
        **{f"nodes_{k}": v for k, v in nodes.items()},
        **{f"target_{k}": v for k, v in targets.items()},
    )
    return _graph(node, 1)


def _tree_ensemble(trees, *, aggregate: int = 1, dtype=np.float32):
    """The ai.onnx.ml opset 5 ``TreeEnsemble`` of scikit-learn trees: interior nodes and leaves apart."""
    from onnx import TensorProto, helper

    elem = TensorProto.FLOAT if dtype is np.float32 else TensorProto.DOUBLE
    fields = {k: [] for k in ("featureids", "splits", "truenodeids", "trueleafs", "falsenodeids", "falseleafs")}
    roots, weights = [], []
    for tree in trees:
        interior = [i for i in range(tree.node_count) if tree.children_left[i] >= 0]
        leaves = [i for i in range(tree.node_count) if tree.children_left[i] < 0]
        node_at = {i: len(fields["featureids"]) + k for k, i in enumerate(interior)}
        leaf_at = {i: len(weights) + k for k, i in enumerate(leaves)}
        roots.append(node_at[0])
        for i in interior:
            fields["featureids"].append(int(tree.feature[i]))
            fields["splits"].append(float(tree.threshold[i]))
            for side, child in (("true", int(tree.children_left[i])), ("false", int(tree.children_right[i]))):
                is_leaf = child in leaf_at
                fields[f"{side}nodeids"].append(leaf_at[child] if is_leaf else node_at[child])
                fields[f"{side}leafs"].append(int(is_leaf))
        weights += [float(tree.value[i, 0, 0]) for i in leaves]
    node = helper.make_node(
        "TreeEnsemble",
        ["X"],
        ["Y"],
        domain="ai.onnx.ml",
        n_targets=1,
        aggregate_function=aggregate,
        post_transform=0,
        tree_roots=roots,
        nodes_featureids=fields["featureids"],
        nodes_modes=helper.make_tensor(
            "modes", TensorProto.UINT8, [len(fields["splits"])], [0] * len(fields["splits"])
        ),
        nodes_splits=helper.make_tensor("splits", elem, [len(fields["splits"])], fields["splits"]),
        nodes_truenodeids=fields["truenodeids"],
        nodes_trueleafs=fields["trueleafs"],
        nodes_falsenodeids=fields["falsenodeids"],
        nodes_falseleafs=fields["falseleafs"],
        leaf_targetids=[0] * len(weights),
        leaf_weights=helper.make_tensor("weights", elem, [len(weights)], weights),
    )
    return _graph(node, 1, ml_opset=5, dtype=elem)


def _xgboost_classifier(booster, x: np.ndarray):
    """A TreeEnsembleClassifier (BRANCH_LT, missing values where XGBoost sends them) of an XGBoost booster."""
    import xgboost
    from onnx import helper

    model = json.loads(bytes(booster.save_raw("json")))
    nodes = {k: [] for k in ("treeids", "nodeids", "featureids", "modes", "values", "truenodeids", "falsenodeids")}
    nodes["missing_value_tracks_true"] = []
    leaves = {k: [] for k in ("treeids", "nodeids", "ids", "weights")}
    leaf_value = {}
    for t, tree in enumerate(model["learner"]["gradient_booster"]["model"]["trees"]):
        for i, (left, right) in enumerate(zip(tree["left_children"], tree["right_children"], strict=True)):
            leaf = left < 0
            split = float(np.float32(tree["split_conditions"][i]))
            for key, value in (
                ("treeids", t),
                ("nodeids", i),
                ("featureids", int(tree["split_indices"][i])),
                ("modes", "LEAF" if leaf else "BRANCH_LT"),
                ("values", 0.0 if leaf else split),
                ("truenodeids", 0 if leaf else left),
                ("falsenodeids", 0 if leaf else right),
                ("missing_value_tracks_true", int(bool(tree["default_left"][i])) if not leaf else 0),
            ):
                nodes[key].append(value)
            if leaf:
                leaf_value[(t, i)] = split
                for key, value in (("treeids", t), ("nodeids", i), ("ids", 0), ("weights", split)):
                    leaves[key].append(value)
    # the base margin: the booster's margin less the leaves each row reaches
    reached = booster.predict(xgboost.DMatrix(x[:1]), pred_leaf=True).astype(int)[0]
    margin = float(booster.predict(xgboost.DMatrix(x[:1]), output_margin=True)[0])
    base = margin - float(
        np.sum([np.float32(leaf_value[(t, int(i))]) for t, i in enumerate(reached)], dtype=np.float32)
    )
    node = helper.make_node(
        "TreeEnsembleClassifier",
        ["X"],
        ["label", "probabilities"],
        domain="ai.onnx.ml",
        classlabels_int64s=[0, 1],
        base_values=[base],
        post_transform="LOGISTIC",
        **{f"nodes_{k}": v for k, v in nodes.items()},
        **{f"class_{k}": v for k, v in leaves.items()},
    )
    return _graph(node, 2)


def _lightgbm_classifier(booster):
    """A TreeEnsembleClassifier (BRANCH_LEQ, float32 thresholds, LOGISTIC) of a LightGBM binary booster's dump."""
    from onnx import helper

    nodes = {k: [] for k in ("treeids", "nodeids", "featureids", "modes", "values", "truenodeids", "falsenodeids")}
    nodes["missing_value_tracks_true"] = []
    leaves = {k: [] for k in ("treeids", "nodeids", "ids", "weights")}
    for t, info in enumerate(booster.dump_model()["tree_info"]):
        numbered: list[dict] = []

        def number(node: dict, numbered: list = numbered) -> int:
            numbered.append(node)
            node["_id"] = len(numbered) - 1
            if "split_index" in node:
                number(node["left_child"]), number(node["right_child"])
            return node["_id"]

        number(info["tree_structure"])
        for node in numbered:
            branch = "split_index" in node
            assert not branch or node["decision_type"] == "<="
            for key, value in (
                ("treeids", t),
                ("nodeids", node["_id"]),
                ("featureids", node["split_feature"] if branch else 0),
                ("modes", "BRANCH_LEQ" if branch else "LEAF"),
                ("values", float(node["threshold"]) if branch else 0.0),
                ("truenodeids", node["left_child"]["_id"] if branch else 0),
                ("falsenodeids", node["right_child"]["_id"] if branch else 0),
                ("missing_value_tracks_true", int(branch and node["default_left"])),
            ):
                nodes[key].append(value)
            if not branch:
                for key, value in (
                    ("treeids", t),
                    ("nodeids", node["_id"]),
                    ("ids", 0),
                    ("weights", node["leaf_value"]),
                ):
                    leaves[key].append(value)
    node = helper.make_node(
        "TreeEnsembleClassifier",
        ["X"],
        ["label", "probabilities"],
        domain="ai.onnx.ml",
        classlabels_int64s=[0, 1],
        post_transform="LOGISTIC",
        **{f"nodes_{k}": v for k, v in nodes.items()},
        **{f"class_{k}": v for k, v in leaves.items()},
    )
    return _graph(node, 2)


# --- the engine on ONNX uploads, against shap on the original model --------------------------


def _gb_classifier(x, y):
    from sklearn.ensemble import GradientBoostingClassifier

    model = GradientBoostingClassifier(n_estimators=25, max_depth=3, random_state=0).fit(x, y)
    return model, model.decision_function


def _gb_regressor(x, y):
    from sklearn.ensemble import GradientBoostingRegressor

    model = GradientBoostingRegressor(n_estimators=25, max_depth=3, random_state=0).fit(x, x[:, 0] - 2 * x[:, 2])
    return model, model.predict


def _rf_classifier(x, y):
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(n_estimators=12, max_depth=4, random_state=0).fit(x, y)
    return model, lambda z: model.predict_proba(z)[:, 1]


def _rf_regressor(x, y):
    from sklearn.ensemble import RandomForestRegressor

    model = RandomForestRegressor(n_estimators=12, max_depth=4, random_state=0).fit(x, x[:, 0] * x[:, 1])
    return model, model.predict


SKL2ONNX = {
    "gradient boosting classifier": (_gb_classifier, "TreeEnsembleClassifier", "log_odds"),
    "gradient boosting regressor": (_gb_regressor, "TreeEnsembleRegressor", "raw"),
    "random forest classifier": (_rf_classifier, "TreeEnsembleClassifier", "probability"),
    "random forest regressor": (_rf_regressor, "TreeEnsembleRegressor", "raw"),
}


def _float32_leaves(forest):
    """A copy of a forest whose leaf values are rounded to float32, as a graph that averages them stores them.

    A graph with ``aggregate_function`` AVERAGE holds each leaf as a float32 number and divides
    by the number of trees; shap divides the float64 leaf first. TreeSHAP then rounds either to
    float32 (shap's interventional TreeSHAP keeps leaf values in float32), one unit in the last
    place apart at most, so the oracle is the forest with the float32 leaves the graph holds.
    """
    import copy

    rounded = copy.deepcopy(forest)
    for estimator in rounded.estimators_:
        estimator.tree_.value[:] = estimator.tree_.value.astype(np.float32)
    return rounded


def _assert_equals_oracle(result: explain.Explanation, model, x: np.ndarray, column: int | None = None) -> None:
    expected, expected_base = _oracle(model, x, x)
    if expected.ndim == 3:
        expected = expected[..., column]
    assert result.rows.tolist() == list(range(len(x)))
    assert np.abs(result.values - expected).max() <= ORACLE_TOL
    base = float(expected_base[column if column is not None else -1])
    assert result.summary["base_value"] == pytest.approx(base, rel=BASE_RTOL, abs=BASE_RTOL)


def _assert_reconstructs(result: explain.Explanation, margin, x: np.ndarray) -> None:
    """base value + SHAP values give the original model's own margin, and the engine checked it against onnxruntime."""
    additivity = result.summary["additivity"]
    assert additivity["checked"] and additivity["passed"] and additivity["rtol"] == 1e-5
    reconstructed = result.base_values + result.values.sum(axis=1)
    assert np.abs(reconstructed - margin(x)).max() <= 1e-5 * max(1.0, float(np.abs(margin(x)).max()))


@pytest.mark.parametrize("kind", list(SKL2ONNX))
def test_a_skl2onnx_tree_model_is_explained_by_treeshap_as_shap_explains_the_original(tmp_path, kind):
    # given a scikit-learn tree model, and its ONNX conversion by skl2onnx (float32)
    train, operator, output = SKL2ONNX[kind]
    x, y = _data()
    model, margin = train(x, y)
    # when the ONNX upload is explained
    result = _explained(tmp_path, _skl2onnx(model, x), x)
    # then interventional TreeSHAP on the trees read from the graph ran
    summary = result.summary
    assert summary["method"] == "tree" and summary["algorithm"] == "tree_interventional"
    assert summary["tree_source"] == "onnx" and summary["tree_refusal"] is None
    assert summary["explainer"] == "shap.TreeExplainer" and summary["output"] == output
    assert summary["model"]["type"] == f"onnx.{operator}"
    assert summary["budget"]["background_size"] == len(x) and summary["budget"]["evaluations"] is None
    assert {"shap", "numpy", "onnxruntime", "onnx"} <= set(summary["engine"])
    # and its SHAP values are shap's on the original model, with the same background rows
    _assert_equals_oracle(result, model, x, column=1 if output == "probability" else None)
    _assert_reconstructs(result, margin, x)


def test_trees_reading_a_float64_input_through_a_cast_are_read(tmp_path):
    from onnx import TensorProto, helper

    # given a converted regressor whose graph takes float64 rows and casts them to float32 for its trees
    x, y = _data()
    model, margin = _gb_regressor(x, y)
    graph = _skl2onnx(model, x)
    graph.graph.input[0].name = "rows"
    graph.graph.input[0].type.tensor_type.elem_type = TensorProto.DOUBLE
    graph.graph.node.insert(0, helper.make_node("Cast", ["rows"], ["X"], to=TensorProto.FLOAT))
    # when / then
    result = _explained(tmp_path, graph, x)
    assert result.summary["algorithm"] == "tree_interventional"
    _assert_equals_oracle(result, model, x)
    _assert_reconstructs(result, margin, x)


def test_a_zipmap_classifier_is_explained_by_its_trees(tmp_path):
    from skl2onnx import to_onnx

    # given a gradient boosting classifier converted with skl2onnx's default ZipMap after the trees
    x, y = _data()
    model, margin = _gb_classifier(x, y)
    graph = to_onnx(model, x[:1].astype(np.float32), target_opset={"": 17, "ai.onnx.ml": 3})
    assert {"ZipMap", "Cast"} <= {n.op_type for n in graph.graph.node}
    # when / then the trees are read all the same (the ZipMap only reshapes the probabilities)
    result = _explained(tmp_path, graph, x)
    assert result.summary["algorithm"] == "tree_interventional" and result.summary["model"]["positive_class"] == 1
    _assert_equals_oracle(result, model, x)
    _assert_reconstructs(result, margin, x)


def test_an_averaged_forest_divides_its_leaves_by_the_number_of_trees(tmp_path):
    # given a random forest regressor written as a TreeEnsembleRegressor with aggregate_function AVERAGE
    x, y = _data()
    model, margin = _rf_regressor(x, y)
    graph = _legacy_regressor([e.tree_ for e in model.estimators_], aggregate="AVERAGE")
    # when / then
    result = _explained(tmp_path, graph, x)
    assert result.summary["algorithm"] == "tree_interventional"
    _assert_equals_oracle(result, _float32_leaves(model), x)
    _assert_reconstructs(result, margin, x)


@pytest.mark.parametrize("mode", ["GT", "GTE"])
def test_greater_than_splits_are_read_with_their_children_swapped(tmp_path, mode):
    # given gradient boosting trees written with every split as x > t (or x >= the next float32 above t)
    x, y = _data()
    model, margin = _gb_regressor(x, y)
    base = float(model.init_.constant_[0][0])
    trees = [e.tree_ for e in model.estimators_[:, 0]]
    graph = _legacy_regressor(trees, base=base, scale=model.learning_rate, mode=mode)
    # when / then
    result = _explained(tmp_path, graph, x)
    assert result.summary["algorithm"] == "tree_interventional"
    _assert_equals_oracle(result, model, x)
    _assert_reconstructs(result, margin, x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_opset_5_tree_ensemble_operator_is_read(tmp_path, dtype):
    # given a random forest regressor written as ai.onnx.ml's TreeEnsemble (AVERAGE), for float32 or float64 input
    x, y = _data()
    model, margin = _rf_regressor(x, y)
    graph = _tree_ensemble([e.tree_ for e in model.estimators_], aggregate=0, dtype=dtype)
    # when / then
    result = _explained(tmp_path, graph, x)
    assert result.summary["algorithm"] == "tree_interventional"
    assert result.summary["model"]["type"] == "onnx.TreeEnsemble"
    _assert_equals_oracle(result, _float32_leaves(model) if dtype is np.float32 else model, x)
    _assert_reconstructs(result, margin, x)


def test_xgboost_trees_in_onnx_are_explained_as_shap_explains_the_booster(tmp_path):
    import xgboost

    # given an XGBoost booster (x < t splits, missing values sent left or right) as a TreeEnsembleClassifier
    x, y = _data()
    params = {"max_depth": 3, "objective": "binary:logistic", "nthread": 1}
    booster = xgboost.train(params, xgboost.DMatrix(x, label=y), 20)
    graph = _xgboost_classifier(booster, x)
    # when
    result = _explained(tmp_path, graph, x)
    # then
    assert result.summary["algorithm"] == "tree_interventional" and result.summary["output"] == "log_odds"
    _assert_equals_oracle(result, booster, x)
    _assert_reconstructs(result, lambda z: booster.predict(xgboost.DMatrix(z), output_margin=True), x)


@pytest.mark.filterwarnings("ignore:LightGBM binary classifier with TreeExplainer:UserWarning")
def test_lightgbm_trees_in_onnx_are_explained_as_shap_explains_the_booster(tmp_path):
    import lightgbm

    # given a LightGBM booster as a TreeEnsembleClassifier: its float64 thresholds sit a hair off the
    # midpoints of the 1/8 steps, so the float32 ones the graph stores send every row the same way
    x, y = _data()
    params = {"objective": "binary", "num_leaves": 8, "min_data_in_leaf": 5, "verbose": -1, "num_threads": 1}
    booster = lightgbm.train(params, lightgbm.Dataset(x, label=y), 20)
    # when
    result = _explained(tmp_path, _lightgbm_classifier(booster), x)
    # then
    assert result.summary["algorithm"] == "tree_interventional" and result.summary["output"] == "log_odds"
    _assert_equals_oracle(result, booster, x)
    _assert_reconstructs(result, lambda z: booster.predict(z, raw_score=True), x)


# --- the reader: several outputs, refusals -----------------------------------------------------


def test_a_multiclass_forest_is_read_with_one_column_per_class(tmp_path):
    import shap
    from sklearn.ensemble import RandomForestClassifier

    # given a three-class random forest converted by skl2onnx
    x, _ = _data()
    labels = np.digitize(x[:, 0] + x[:, 1], [-0.5, 0.5])
    model = RandomForestClassifier(n_estimators=8, max_depth=4, random_state=0).fit(x, labels)
    trees = onnx_trees.read(_skl2onnx(model, x))
    # when shap explains the trees read from the graph
    explainer = shap.TreeExplainer(trees.shap_model(), data=x, feature_perturbation="interventional")
    values = np.asarray(explainer.shap_values(x, check_additivity=False))
    # then every class's SHAP values are shap's on the original forest
    expected, _ = _oracle(model, x, x)
    assert trees.n_outputs == 3 and trees.class_labels == [0, 1, 2]
    assert np.abs(values - expected).max() <= ORACLE_TOL
    assert np.abs(values.sum(axis=1) + explainer.expected_value - model.predict_proba(x)).max() <= 1e-6
    # and the engine refuses it in words, as for any classifier of more than two classes
    path = tmp_path / "three.onnx"
    path.write_bytes(_skl2onnx(model, x).SerializeToString())
    with pytest.raises(ValueError, match="only binary classifiers and single-output models.*3 classes"):
        explain.explain(path, "onnx", x, NAMES)


def test_a_multiclass_gradient_boosting_margin_is_read_per_class():
    import shap
    from sklearn.ensemble import GradientBoostingClassifier

    # given a three-class gradient boosting classifier (softmax over three margins) converted by skl2onnx
    x, _ = _data()
    labels = np.digitize(x[:, 0] + x[:, 1], [-0.5, 0.5])
    model = GradientBoostingClassifier(n_estimators=10, max_depth=2, random_state=0).fit(x, labels)
    trees = onnx_trees.read(_skl2onnx(model, x))
    # when (shap's TreeExplainer does not read multiclass gradient boosting, so the margins are the oracle)
    explainer = shap.TreeExplainer(trees.shap_model(), data=x, feature_perturbation="interventional")
    values = np.asarray(explainer.shap_values(x, check_additivity=False))
    # then each class's SHAP values add up to its margin
    assert trees.post_transform == "SOFTMAX" and trees.n_outputs == 3
    assert np.abs(values.sum(axis=1) + explainer.expected_value - model.decision_function(x)).max() <= 1e-5


def _rewritten(graph, **changes):
    node = graph.graph.node[0]
    for attribute in node.attribute:
        if attribute.name in changes:
            change = changes[attribute.name]
            if attribute.strings:
                attribute.strings[:] = change(list(attribute.strings))
            else:
                attribute.s = change(attribute.s)
    return graph


def test_an_equality_split_falls_back_to_permutation_with_the_reason_recorded(tmp_path):
    # given a regressor whose first split tests x == t, which TreeSHAP cannot represent
    x, y = _data()
    model, _ = _gb_regressor(x, y)
    graph = _rewritten(_skl2onnx(model, x), nodes_modes=lambda modes: [b"BRANCH_EQ", *modes[1:]])
    # when
    summary = _explained(tmp_path, graph, x[:8], background_size=5, max_evals=9).summary
    # then the permutation explainer ran, and the report says why the trees were not read
    assert summary["method"] == "permutation" and summary["algorithm"] == "permutation"
    assert summary["tree_source"] is None
    assert "BRANCH_EQ" in summary["tree_refusal"] and "x <= threshold" in summary["tree_refusal"]
    assert summary["additivity"]["passed"]


def test_a_minimum_of_trees_is_refused_by_the_reader():
    from onnx import helper

    x, y = _data()
    model, _ = _rf_regressor(x, y)
    graph = _skl2onnx(model, x)
    graph.graph.node[0].attribute.append(helper.make_attribute("aggregate_function", "MIN"))
    with pytest.raises(onnx_trees.NotTrees, match="combined by MIN"):
        onnx_trees.read(graph)


def test_a_pipeline_that_scales_before_its_trees_is_explained_by_permutation(tmp_path):
    from skl2onnx import to_onnx
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # given a scaler then trees: TreeSHAP on the trees alone would explain the scaled features
    x, y = _data()
    pipeline = make_pipeline(StandardScaler(), GradientBoostingRegressor(n_estimators=5, max_depth=2))
    pipeline.fit(x, x[:, 0])
    graph = to_onnx(pipeline, x[:1].astype(np.float32), target_opset={"": 17, "ai.onnx.ml": 3})
    # when
    summary = _explained(tmp_path, graph, x[:8], background_size=5, max_evals=9).summary
    # then
    assert summary["algorithm"] == "permutation"
    assert "computes more than its trees (Scaler)" in summary["tree_refusal"]


def test_a_float64_split_shap_cannot_hold_is_refused():
    from onnx import TensorProto, helper, numpy_helper

    # given float64 input compared with x < 0.1 (no float32 number c gives x <= c for every float64 x)
    x, y = _data()
    model, _ = _rf_regressor(x, y)
    graph = _tree_ensemble([e.tree_ for e in model.estimators_[:2]], dtype=np.float64)
    for attribute in graph.graph.node[0].attribute:
        n = attribute.t.dims[0] if attribute.name in ("nodes_modes", "nodes_splits") else 0
        if attribute.name == "nodes_modes":
            attribute.t.CopyFrom(helper.make_tensor("modes", TensorProto.UINT8, [n], [1] + [0] * (n - 1)))
        if attribute.name == "nodes_splits":
            splits = [0.1, *numpy_helper.to_array(attribute.t).tolist()[1:]]
            attribute.t.CopyFrom(helper.make_tensor("splits", TensorProto.DOUBLE, [n], splits))
    with pytest.raises(onnx_trees.NotTrees, match="cannot hold exactly"):
        onnx_trees.read(graph)


def test_a_graph_without_trees_reads_as_none(tmp_path):
    from skl2onnx import to_onnx
    from sklearn.linear_model import LinearRegression

    x, y = _data()
    assert onnx_trees.read(to_onnx(LinearRegression().fit(x, y), x[:1].astype(np.float32))) is None
