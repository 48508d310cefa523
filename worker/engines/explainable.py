"""Models loaded for explanation: what of a model is explained, and whether TreeSHAP can read it.

Only workers import this module. Loading goes through ``loaders.native_model``'s functions, with
the same safety as verification (ONNX through the checker, skops with the trusted-type
allow-list, XGBoost and LightGBM through their own readers; nothing is unpickled). See
``explain`` for which output of each kind of model is explained.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from worker.engines import loaders, onnx_trees

RTOL_FLOAT64 = 1e-9
RTOL_FLOAT32 = 1e-5

# scikit-learn estimators shap's TreeExplainer reads tree by tree (exact TreeSHAP).
SKLEARN_TREE_MODELS = frozenset(
    {
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._classes.DecisionTreeRegressor",
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.ensemble._forest.RandomForestRegressor",
        "sklearn.ensemble._forest.ExtraTreesClassifier",
        "sklearn.ensemble._forest.ExtraTreesRegressor",
        "sklearn.ensemble._gb.GradientBoostingClassifier",
        "sklearn.ensemble._gb.GradientBoostingRegressor",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor",
    }
)
# Classifiers whose trees hold class probabilities (TreeSHAP explains predict_proba); the
# boosted ones hold log-odds (TreeSHAP explains decision_function).
_PROBABILITY_TREES = ("DecisionTreeClassifier", "RandomForestClassifier", "ExtraTreesClassifier")
# The libraries whose versions an explanation records, per artifact format.
LIBRARIES = {
    "skops": ("scikit-learn", "skops"),
    "xgboost": ("xgboost",),
    "lightgbm": ("lightgbm",),
    "onnx": ("onnxruntime", "onnx"),  # onnx reads the tree ensembles out of the graph
}


@dataclass(frozen=True)
class ExplainableModel:
    """A loaded model, what of it is explained, and how.

    ``predict`` gives the explained output (float64, one value per row) and is what the
    permutation explainer evaluates; ``native`` is what ``shap.TreeExplainer`` reads (the
    library's model, or shap's dictionary of trees read out of an ONNX graph).
    """

    fmt: str
    type: str
    method: str  # "tree" | "permutation"
    output: str  # "log_odds" | "probability" | "raw"
    predict: Callable[[np.ndarray], np.ndarray]
    n_features: int | None = None
    feature_names: tuple[str, ...] | None = None  # the names the model was trained with, if it keeps them
    positive_class: Any = None
    native: Any = None
    rtol: float = RTOL_FLOAT64
    # "native": shap reads the library's own model (path-dependent TreeSHAP); "onnx": the trees
    # were read out of an ONNX graph (interventional TreeSHAP against background rows).
    tree_source: str | None = None
    # why an ONNX graph holding a tree ensemble is explained by permutation instead
    tree_refusal: str | None = None


def _type_name(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _json_scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    return value if isinstance(value, (bool, int, float, str)) or value is None else str(value)


def _binary_classes(estimator: Any) -> Any:
    """The positive class of a binary classifier (classes_[1]); a ValueError for more classes."""
    classes = list(estimator.classes_)
    if len(classes) != 2:
        raise ValueError(
            f"only binary classifiers and single-output models can be explained; this classifier has "
            f"{len(classes)} classes"
        )
    return _json_scalar(classes[1])


def _skops_model(path: str | Path) -> ExplainableModel:
    estimator = loaders._skops_estimator(path)
    name = _type_name(estimator)
    width = getattr(estimator, "n_features_in_", None)
    names = getattr(estimator, "feature_names_in_", None)
    common = {
        "fmt": "skops",
        "type": name,
        "n_features": int(width) if width is not None else None,
        "feature_names": tuple(str(n) for n in names) if names is not None else None,
        "native": estimator,
    }
    classifier = hasattr(estimator, "classes_")
    if classifier and np.ndim(estimator.classes_) != 1:
        raise ValueError("only single-output models can be explained; this classifier predicts several outputs")
    positive = _binary_classes(estimator) if classifier else None
    if name in SKLEARN_TREE_MODELS:
        if getattr(estimator, "n_outputs_", 1) != 1:
            raise ValueError("only single-output models can be explained; this model predicts several outputs")
        common["tree_source"] = "native"
        if not classifier:
            return ExplainableModel(method="tree", output="raw", predict=_float_rows(estimator.predict), **common)
        if type(estimator).__name__ in _PROBABILITY_TREES:
            return ExplainableModel(
                method="tree",
                output="probability",
                positive_class=positive,
                predict=_float_rows(lambda x: estimator.predict_proba(x)[:, 1]),
                **common,
            )
        return ExplainableModel(
            method="tree",
            output="log_odds",
            positive_class=positive,
            predict=_float_rows(estimator.decision_function),
            **common,
        )
    if classifier and hasattr(estimator, "predict_proba"):
        predict, output = (lambda x: estimator.predict_proba(x)[:, 1]), "probability"
    elif classifier and hasattr(estimator, "decision_function"):
        predict, output = estimator.decision_function, "raw"
    elif hasattr(estimator, "predict") and not classifier:
        predict, output = estimator.predict, "raw"
    else:
        raise ValueError(
            f"the skops model ({type(estimator).__qualname__}) does not predict, so it cannot be explained"
        )
    return ExplainableModel(
        method="permutation", output=output, positive_class=positive, predict=_float_rows(predict), **common
    )


def _float_rows(predict: Callable) -> Callable[[np.ndarray], np.ndarray]:
    """The model's output as float64, one value per row; a failure to predict is a ValueError in words."""

    def run(x: np.ndarray) -> np.ndarray:
        try:
            with warnings.catch_warnings():
                # the columns were checked against the names the model was fitted with, if it kept any
                warnings.filterwarnings("ignore", message="X does not have valid feature names")
                out = np.asarray(predict(x), dtype=np.float64)
        except Exception as exc:
            raise ValueError(f"the model cannot score the features: {exc}") from exc
        if out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        if out.shape != (len(x),):
            raise ValueError(f"the model's output has shape {out.shape}, not one value per row")
        return out

    return run


def _xgboost_model(path: str | Path) -> ExplainableModel:
    import xgboost

    booster = loaders.xgboost_booster(path)
    learner = json.loads(booster.save_config())["learner"]
    objective = learner["objective"]["name"]
    params = learner.get("learner_model_param", {})
    if objective.startswith("multi:") or int(params.get("num_class", "0") or 0) > 1:
        raise ValueError(f"only binary classifiers and single-output models can be explained; objective {objective}")
    if int(params.get("num_target", "1") or 1) > 1:
        raise ValueError("only single-output models can be explained; this XGBoost model has several targets")
    names = tuple(booster.feature_names) if booster.feature_names else None
    log_odds = objective in {"binary:logistic", "binary:logitraw", "reg:logistic"}

    def margin(x: np.ndarray) -> np.ndarray:
        return booster.predict(xgboost.DMatrix(x, feature_names=list(names) if names else None), output_margin=True)

    return ExplainableModel(
        fmt="xgboost",
        type=_type_name(booster),
        method="tree",
        output="log_odds" if log_odds else "raw",
        positive_class=1 if objective.startswith("binary:") else None,
        predict=_float_rows(margin),
        n_features=booster.num_features() or None,
        feature_names=names,
        native=booster,
        rtol=RTOL_FLOAT32,  # XGBoost sums leaves and contributions in float32
        tree_source="native",
    )


def _lightgbm_model(path: str | Path) -> ExplainableModel:
    booster = loaders.lightgbm_booster(path)
    objective = str(booster.dump_model(num_iteration=0).get("objective", "")).split(" ")[0]
    if booster.num_model_per_iteration() > 1:
        raise ValueError(f"only binary classifiers and single-output models can be explained; objective {objective}")
    names = tuple(booster.feature_name())
    default_names = names == tuple(f"Column_{i}" for i in range(len(names)))
    return ExplainableModel(
        fmt="lightgbm",
        type=_type_name(booster),
        method="tree",
        output="log_odds" if objective in {"binary", "cross_entropy", "xentropy"} else "raw",
        positive_class=1 if objective == "binary" else None,
        predict=_float_rows(lambda x: booster.predict(x, raw_score=True)),
        n_features=booster.num_feature() or None,
        feature_names=None if default_names else names,
        native=booster,
        tree_source="native",
    )


_ONNX_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64}


def _onnx_model(path: str | Path) -> ExplainableModel:
    session = loaders.onnx_session(path)
    inputs = session.get_inputs()
    if len(inputs) != 1 or inputs[0].type not in _ONNX_TYPES or len(inputs[0].shape) != 2:
        described = ", ".join(f"{i.name} {i.type} {i.shape}" for i in inputs)
        raise ValueError(f"the ONNX model must take one 2-D float input (rows × features); it takes {described}")
    refusal = None
    try:
        trees = onnx_trees.read(_onnx_proto(path))
    except onnx_trees.NotTrees as exc:
        trees, refusal = None, str(exc)
    if trees is not None:
        return _onnx_tree_model(trees, inputs[0])
    first, dtype = inputs[0], _ONNX_TYPES[inputs[0].type]
    floats = [o for o in session.get_outputs() if o.type in _ONNX_TYPES]
    # skl2onnx classifiers converted with zipmap=False answer "label" and "probabilities".
    chosen = next((o for o in floats if o.name == "probabilities"), floats[0] if len(floats) == 1 else None)
    if chosen is None:
        outputs = ", ".join(f"{o.name} {o.type}" for o in session.get_outputs())
        raise ValueError(
            "the ONNX model needs one float output to explain (a classifier's probabilities, converted "
            f"with zipmap=False, or a regressor's value); it has {outputs or 'none'}"
        )
    width = chosen.shape[1] if len(chosen.shape) == 2 else 1  # None when the graph leaves it open
    if isinstance(width, int) and width > 2:
        raise ValueError(f"only binary classifiers and single-output models can be explained; {width} classes")

    def run(x: np.ndarray) -> np.ndarray:
        out = session.run([chosen.name], {first.name: np.ascontiguousarray(x, dtype=dtype)})[0]
        if out.ndim == 2 and out.shape[1] > 2:
            raise ValueError(
                f"only binary classifiers and single-output models can be explained; {out.shape[1]} classes"
            )
        return out[:, -1] if out.ndim == 2 else out  # the positive class of two, or the one value

    n_features = first.shape[1] if isinstance(first.shape[1], int) else None
    return ExplainableModel(
        fmt="onnx",
        type="onnxruntime.InferenceSession",
        method="permutation",
        output="probability" if width == 2 or chosen.name == "probabilities" else "raw",
        predict=_float_rows(run),
        n_features=n_features,
        rtol=RTOL_FLOAT32 if dtype is np.float32 else RTOL_FLOAT64,
        tree_refusal=refusal,
    )


def _onnx_proto(path: str | Path):
    """The graph ``loaders.onnx_session`` has just checked (self-contained, accepted by the checker)."""
    import onnx

    return onnx.load(str(path), load_external_data=False)


def _onnx_tree_model(trees: onnx_trees.OnnxTrees, graph_input: Any) -> ExplainableModel:
    """An ONNX tree ensemble explained by TreeSHAP: the positive class's (or the one target's) margin.

    The explained output is the tree operator's score before ``post_transform``, as onnxruntime
    computes it on the graph cut down to the operator: the log-odds of a logistic classifier,
    the difference of the two margins of a two-class softmax, the summed leaf probabilities of
    a forest, a regression's value.
    """
    import onnxruntime

    width = trees.n_outputs
    if trees.classifier and len(trees.class_labels) > 2:
        raise ValueError(
            "only binary classifiers and single-output models can be explained; "
            f"this classifier has {len(trees.class_labels)} classes"
        )
    if not trees.classifier and width > 1:
        raise ValueError(f"only single-output models can be explained; these trees predict {width} targets")
    weights = np.ones(1)
    if width == 2 and trees.post_transform == "SOFTMAX":
        weights = np.array([-1.0, 1.0])  # softmax of two margins is the logistic of their difference
    elif width == 2:
        weights = np.array([0.0, 1.0])
    if trees.post_transform == "LOGISTIC" or (width == 2 and trees.post_transform == "SOFTMAX"):
        output = "log_odds"
    else:
        output = "probability" if trees.classifier and trees.post_transform == "NONE" else "raw"
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(trees.margin_model, sess_options=options, providers=["CPUExecutionProvider"])
    feed = graph_input.name
    feed_dtype = _ONNX_TYPES[graph_input.type]

    def margin(x: np.ndarray) -> np.ndarray:
        scores = session.run(None, {feed: np.ascontiguousarray(x, dtype=feed_dtype)})[0]
        scores = np.asarray(scores, dtype=np.float64).reshape(len(x), -1)
        if width == 1 and scores.shape[1] == 2:  # onnxruntime's binary case answers [-s, s] or [1 - s, s]
            return scores[:, 1]
        return scores @ weights

    return ExplainableModel(
        fmt="onnx",
        type=f"onnx.{trees.operator}",
        method="tree",
        output=output,
        predict=_float_rows(margin),
        n_features=trees.n_features,
        positive_class=_json_scalar(trees.class_labels[-1]) if trees.classifier else None,
        native=trees.shap_model(weights),
        # shap's interventional TreeSHAP keeps thresholds, leaf values and path weights in float32
        rtol=RTOL_FLOAT32,
        tree_source="onnx",
    )


_MODELS: dict[str, Callable[[str | Path], ExplainableModel]] = {
    "skops": _skops_model,
    "xgboost": _xgboost_model,
    "lightgbm": _lightgbm_model,
    "onnx": _onnx_model,
}


def load_explainable(path: str | Path, fmt: str) -> ExplainableModel:
    """Load an artifact for explanation and choose the method; ``LoadError`` when it does not load."""
    build = _MODELS.get(fmt)
    if build is None:
        raise loaders.LoadError(f"no way to explain a model of format {fmt!r}")
    return build(path)
