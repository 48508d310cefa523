"""Tree ensembles read out of an ONNX graph, as the trees shap's TreeSHAP engine walks.

A tree model converted to ONNX (by skl2onnx, onnxmltools or by hand) keeps its trees in one
``ai.onnx.ml`` operator: ``TreeEnsembleClassifier`` or ``TreeEnsembleRegressor`` (opsets 1 to 3,
thresholds and weights as float lists, or as double tensors in the ``*_as_tensor`` attributes)
or ``TreeEnsemble`` (opset 5). ``read`` turns that operator into shap's dictionary form: per
tree, ``children_left`` / ``children_right`` (the child taken when ``x <= threshold`` / not),
``children_default`` (where a missing value goes), ``features``, ``thresholds`` and the leaf
``values`` per output column. Only the ``onnx`` protobuf is read; onnxruntime is used only to
compute the operator's own output for the additivity check.

What is understood:

- Node modes: ``BRANCH_LEQ`` as is; ``BRANCH_LT`` as ``x <= c`` with ``c`` the largest number
  below the threshold in the type the operator compares in, the same test for every number of
  that type; ``BRANCH_GT`` and ``BRANCH_GTE`` as the complements of ``BRANCH_LEQ`` and
  ``BRANCH_LT`` with the children swapped; ``LEAF``. ``BRANCH_EQ``, ``BRANCH_NEQ`` and
  ``BRANCH_MEMBER`` have no ``x <= c`` form and are refused. shap's interventional TreeSHAP keeps
  ``c`` in float32: always exact when the operator compares float32 inputs; a float64
  comparison whose ``c`` is not a float32 number is refused.
- Missing values go where ``nodes_missing_value_tracks_true`` sends them (the explained rows
  never hold any: the engine refuses missing values before explaining).
- Leaf weights: every (tree, leaf, output, weight) entry, summed per leaf and output;
  ``aggregate_function`` ``SUM`` as is and ``AVERAGE`` by dividing every leaf by the number of
  trees (``MIN`` and ``MAX`` are refused: SHAP values of a minimum are not a sum over trees).
- ``base_values`` (the legacy operators) become shap's ``base_offset``.
- A classifier of two classes whose weights name one class only is onnxruntime's binary case:
  the one score column is the positive class's score.
- ``post_transform`` is left out: the SHAP values are in the operator's margin space, before
  ``LOGISTIC``/``SOFTMAX``, as ``shap.TreeExplainer`` explains a booster's raw output.

The graph around the operator: the operator must read the graph's only input, directly or
through one ``Cast`` to float or double; any other node must be an ``Identity``, ``Cast`` or
``ZipMap`` (what converters put after a classifier). A graph that transforms the input first
(a scaler in a pipeline) or the scores after (a calibration, a target transform) is refused,
since TreeSHAP on the trees would not explain that model.

ONNX keeps no node sample counts (``nodes_hitrates`` are not counts), so path-dependent TreeSHAP
cannot be reproduced; the trees are explained with interventional TreeSHAP against background
rows, which is what ``shap.TreeExplainer(model, data=background,
feature_perturbation="interventional")`` computes on the original model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

TREE_OPERATORS = frozenset({"TreeEnsembleClassifier", "TreeEnsembleRegressor", "TreeEnsemble"})
PASSTHROUGH_OPERATORS = frozenset({"Identity", "Cast", "ZipMap"})
ML_DOMAIN = "ai.onnx.ml"

_LEGACY_MODES = {
    "BRANCH_LEQ": "LEQ",
    "BRANCH_LT": "LT",
    "BRANCH_GTE": "GTE",
    "BRANCH_GT": "GT",
    "BRANCH_EQ": "EQ",
    "BRANCH_NEQ": "NEQ",
    "LEAF": "LEAF",
}
_MODES = {0: "LEQ", 1: "LT", 2: "GTE", 3: "GT", 4: "EQ", 5: "NEQ", 6: "MEMBER"}
_TRANSFORMS = {0: "NONE", 1: "SOFTMAX", 2: "LOGISTIC", 3: "SOFTMAX_ZERO", 4: "PROBIT"}
_AGGREGATES = {0: "AVERAGE", 1: "SUM", 2: "MIN", 3: "MAX"}
_FLOAT_TYPES = {1: np.float32, 11: np.float64}  # onnx.TensorProto.FLOAT, DOUBLE
_ELEM_TYPES = {np.float32: 1, np.float64: 11}


class NotTrees(Exception):
    """The graph holds a tree ensemble TreeSHAP cannot read as it stands; the message says why."""


@dataclass(frozen=True)
class OnnxTrees:
    """The trees of one ONNX tree operator, in shap's dictionary form, and how they are scored.

    ``trees`` hold leaf values per output column (``n_outputs`` of them: the classes, the
    regression targets, or one column for onnxruntime's binary case); ``base_values`` is added
    to every row's sum. ``margin_model`` is the graph cut down to the tree operator with
    ``post_transform`` NONE and its score output only: onnxruntime's own margin for each row.
    """

    operator: str
    trees: list[dict]
    base_values: np.ndarray
    input_dtype: type
    post_transform: str
    aggregate: str
    classifier: bool
    class_labels: list | None
    n_features: int  # the input's width, or (when the graph leaves it open) the columns the trees read
    margin_model: bytes
    margin_dtype: type

    @property
    def n_outputs(self) -> int:
        return len(self.base_values)

    def shap_model(self, weights: np.ndarray | None = None) -> dict:
        """shap's dictionary model of these trees; with ``weights``, of one output: ``values @ weights``."""
        trees, base = self.trees, self.base_values
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float64)
            trees = [{**tree, "values": (tree["values"] @ weights)[:, None]} for tree in trees]
            base = np.asarray([base @ weights])
        return {
            "trees": trees,
            "base_offset": base if len(base) > 1 else float(base[0]),
            "input_dtype": self.input_dtype,
            "internal_dtype": np.float64,
            "tree_output": "raw_value",
        }


def tree_nodes(model: Any) -> list:
    """The ``ai.onnx.ml`` tree operators of a model's main graph."""
    return [n for n in model.graph.node if n.op_type in TREE_OPERATORS and n.domain == ML_DOMAIN]


def read(model: Any) -> OnnxTrees | None:
    """The tree ensemble of an ``onnx.ModelProto``; ``None`` if it holds none, ``NotTrees`` if it is unusable."""
    found = tree_nodes(model)
    if not found:
        return None
    if len(found) > 1:
        raise NotTrees(f"the graph holds {len(found)} tree operators; TreeSHAP reads a graph with one")
    node = found[0]
    input_dtype, cast = _tree_input(model, node)
    attrs = _attributes(node)
    if node.op_type == "TreeEnsemble":
        parsed = _read_tree_ensemble(attrs, input_dtype)
        margin_dtype = input_dtype
    else:
        parsed = _read_legacy(node.op_type, attrs, input_dtype)
        margin_dtype = np.float32  # the legacy operators answer float scores whatever they compare in
    trees, base_values, post_transform, aggregate, labels = parsed
    width = _input_width(model)
    used = max((int(f) for t in trees for f in t["features"] if f >= 0), default=-1) + 1
    if width is not None and used > width:
        raise NotTrees(f"the trees read feature {used - 1}, but the input has {width} column(s)")
    return OnnxTrees(
        operator=node.op_type,
        trees=trees,
        base_values=base_values,
        input_dtype=input_dtype,
        post_transform=post_transform,
        aggregate=aggregate,
        classifier=node.op_type == "TreeEnsembleClassifier",
        class_labels=labels,
        n_features=width if width is not None else used,  # rows narrower than the trees read are refused
        margin_model=_margin_model(model, node, cast, margin_dtype),
        margin_dtype=margin_dtype,
    )


# --- the graph around the operator ----------------------------------------------------------


def _graph_inputs(model: Any) -> list:
    initialized = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in initialized]


def _input_width(model: Any) -> int | None:
    dims = _graph_inputs(model)[0].type.tensor_type.shape.dim
    if len(dims) == 2 and dims[1].HasField("dim_value"):
        return int(dims[1].dim_value)
    return None


def _tree_input(model: Any, node: Any) -> tuple[type, Any]:
    """The type the trees compare in, and the ``Cast`` between the graph input and the operator (or None)."""
    inputs = _graph_inputs(model)
    if len(inputs) != 1:
        raise NotTrees(f"the graph takes {len(inputs)} inputs; TreeSHAP reads trees over one input table")
    graph_input = inputs[0]
    # read() has made sure the graph holds one tree operator, so every other node is one of these or is refused
    others = [n for n in model.graph.node if n.op_type not in TREE_OPERATORS | PASSTHROUGH_OPERATORS]
    if others:
        kinds = ", ".join(sorted({n.op_type for n in others}))
        raise NotTrees(
            f"the graph computes more than its trees ({kinds}); TreeSHAP on the trees alone would not explain it"
        )
    source, cast = node.input[0], None
    if source != graph_input.name:
        cast = next((n for n in model.graph.node if n.op_type == "Cast" and source in n.output), None)
        if cast is None or cast.input[0] != graph_input.name:
            raise NotTrees("the tree operator does not read the graph's input (directly or through one Cast)")
        to = _attributes(cast).get("to")
        if to not in _FLOAT_TYPES:
            raise NotTrees("the tree operator reads its input cast to a type other than float or double")
        return _FLOAT_TYPES[to], cast
    elem = graph_input.type.tensor_type.elem_type
    if elem not in _FLOAT_TYPES:
        raise NotTrees("the tree operator reads an input that is not float or double")
    return _FLOAT_TYPES[elem], None


def _margin_model(model: Any, node: Any, cast: Any, dtype: type) -> bytes:
    """The graph cut down to (the input Cast and) the tree operator, without post_transform, answering its scores."""
    import onnx
    from onnx import helper

    tree = onnx.NodeProto()
    tree.CopyFrom(node)
    kept = [a for a in tree.attribute if a.name != "post_transform"]
    del tree.attribute[:]
    tree.attribute.extend(kept)  # post_transform's default is NONE for every tree operator
    score = tree.output[-1]  # Y of the regressors, Z (the scores) of the classifier
    graph = helper.make_graph(
        [*([cast] if cast is not None else []), tree],
        "tree_margin",
        [_graph_inputs(model)[0]],
        [helper.make_tensor_value_info(score, _ELEM_TYPES[dtype], None)],
    )
    reduced = helper.make_model(graph, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    return reduced.SerializeToString()


# --- attributes ---------------------------------------------------------------------------


def _attributes(node: Any) -> dict[str, Any]:
    from onnx import helper, numpy_helper

    out = {}
    for attribute in node.attribute:
        value = helper.get_attribute_value(attribute)
        if attribute.type == attribute.TENSOR:
            value = numpy_helper.to_array(value)
        out[attribute.name] = value
    return out


def _numbers(attrs: dict, name: str, default: Any = None) -> np.ndarray | None:
    """A float attribute, preferring its double ``*_as_tensor`` form (ai.onnx.ml opset 3) when present."""
    tensor = attrs.get(f"{name}_as_tensor")
    if tensor is not None and np.size(tensor):
        return np.asarray(tensor, dtype=np.float64).reshape(-1)
    value = attrs.get(name, default)
    if value is None:
        return None
    return np.asarray(value, dtype=np.float32).astype(np.float64).reshape(-1)


def _text(value: Any, default: str) -> str:
    if value is None:
        return default
    return value.decode() if isinstance(value, bytes) else str(value)


def _cut(mode: str, threshold: float, dtype: type) -> float:
    """The ``c`` for which ``x <= c`` is the node's test (``x <= t`` or ``x < t``) for every x of ``dtype``.

    shap's interventional TreeSHAP holds thresholds in float32 (and compares the row's value
    with it in float64), so the cut must be a float32 number: always so for a float32
    comparison; for a float64 comparison only when the threshold allows it, otherwise the
    trees are refused rather than explained with a moved split.
    """
    strict = mode in ("LT", "GTE")
    if dtype is np.float32:
        cut = np.float32(threshold)
        if cut > threshold or (strict and cut >= threshold):
            cut = np.nextafter(cut, np.float32(-np.inf))
        return float(cut)
    cut = float(np.nextafter(threshold, -np.inf)) if strict else float(threshold)
    if float(np.float32(cut)) != cut:
        raise NotTrees(
            f"a tree compares float64 values with {threshold!r} ({'<' if strict else '<='}), a split that "
            "TreeSHAP, which keeps thresholds in float32, cannot hold exactly"
        )
    return cut


# --- TreeEnsembleClassifier / TreeEnsembleRegressor (ai.onnx.ml opsets 1 to 3) ---------------


def _read_legacy(op: str, attrs: dict, dtype: type):
    classifier = op == "TreeEnsembleClassifier"
    tree_ids = np.asarray(attrs.get("nodes_treeids", []), dtype=np.int64)
    node_ids = np.asarray(attrs.get("nodes_nodeids", []), dtype=np.int64)
    features = np.asarray(attrs.get("nodes_featureids", []), dtype=np.int64)
    modes = [_LEGACY_MODES.get(_text(m, ""), _text(m, "")) for m in attrs.get("nodes_modes", [])]
    thresholds = _numbers(attrs, "nodes_values", [])
    true_ids = np.asarray(attrs.get("nodes_truenodeids", []), dtype=np.int64)
    false_ids = np.asarray(attrs.get("nodes_falsenodeids", []), dtype=np.int64)
    n = len(tree_ids)
    tracks = np.asarray(attrs.get("nodes_missing_value_tracks_true") or [0] * n, dtype=np.int64)
    lengths = {len(a) for a in (node_ids, features, modes, thresholds, true_ids, false_ids, tracks)}
    if n == 0 or lengths != {n}:
        raise NotTrees(f"the {op} node's nodes_* attributes are missing or of different lengths")

    prefix = "class" if classifier else "target"
    leaf_trees = np.asarray(attrs.get(f"{prefix}_treeids", []), dtype=np.int64)
    leaf_nodes = np.asarray(attrs.get(f"{prefix}_nodeids", []), dtype=np.int64)
    leaf_outputs = np.asarray(attrs.get(f"{prefix}_ids", []), dtype=np.int64)
    leaf_weights = _numbers(attrs, f"{prefix}_weights", [])
    if not len(leaf_trees) or len({len(leaf_trees), len(leaf_nodes), len(leaf_outputs), len(leaf_weights)}) != 1:
        raise NotTrees(f"the {op} node's {prefix}_* attributes are missing or of different lengths")

    labels = None
    if classifier:
        labels = list(attrs.get("classlabels_int64s") or [_text(s, "") for s in attrs.get("classlabels_strings", [])])
        if not labels:
            raise NotTrees("the TreeEnsembleClassifier node names no class labels")
        n_outputs = len(labels)
        if n_outputs == 2 and len(set(leaf_outputs.tolist())) == 1:
            n_outputs, leaf_outputs = 1, np.zeros_like(leaf_outputs)  # onnxruntime's binary case
        aggregate = "SUM"
    else:
        n_outputs = int(attrs.get("n_targets", 1))
        aggregate = _text(attrs.get("aggregate_function"), "SUM")
    if leaf_outputs.min() < 0 or leaf_outputs.max() >= n_outputs:
        raise NotTrees(f"the {op} node's {prefix}_ids name outputs outside 0..{n_outputs - 1}")
    base = _numbers(attrs, "base_values")
    if base is None or not len(base):
        base = np.zeros(n_outputs)
    elif len(base) != n_outputs:
        raise NotTrees(f"the {op} node has {len(base)} base value(s) for {n_outputs} output column(s)")

    by_tree: dict[int, dict[int, int]] = {}
    for i, (t, k) in enumerate(zip(tree_ids.tolist(), node_ids.tolist(), strict=True)):
        if k in by_tree.setdefault(t, {}):
            raise NotTrees(f"tree {t} of the {op} node repeats node id {k}")
        by_tree[t][k] = i
    leaves: dict[tuple[int, int], np.ndarray] = {}
    for t, k, out, w in zip(leaf_trees.tolist(), leaf_nodes.tolist(), leaf_outputs.tolist(), leaf_weights, strict=True):
        leaves.setdefault((t, k), np.zeros(n_outputs))[out] += w

    trees = []
    for t, index in sorted(by_tree.items()):
        children = {int(true_ids[i]) for i in index.values() if modes[i] != "LEAF"}
        children |= {int(false_ids[i]) for i in index.values() if modes[i] != "LEAF"}
        roots = [k for k in index if k not in children]
        if len(roots) != 1:
            raise NotTrees(f"tree {t} of the {op} node does not have one root")

        def node_of(k: int, t: int = t, index: dict = index) -> dict:
            if k not in index:
                raise NotTrees(f"tree {t} of the {op} node points to a node id {k} it does not hold")
            i = index[k]
            if modes[i] == "LEAF":
                return {"leaf": leaves.get((t, k), np.zeros(n_outputs))}
            return {
                "mode": modes[i],
                "feature": int(features[i]),
                "threshold": float(thresholds[i]),
                "true": int(true_ids[i]),
                "false": int(false_ids[i]),
                "missing_true": bool(tracks[i]),
            }

        trees.append(_flatten(roots[0], node_of, n_outputs, dtype))
    transform = _text(attrs.get("post_transform"), "NONE")
    return _aggregated(trees, aggregate), base, transform, aggregate, labels


# --- TreeEnsemble (ai.onnx.ml opset 5) ----------------------------------------------------


def _read_tree_ensemble(attrs: dict, dtype: type):
    features = np.asarray(attrs.get("nodes_featureids", []), dtype=np.int64)
    n = len(features)
    modes_raw = np.asarray(attrs.get("nodes_modes", np.zeros(0)), dtype=np.int64).reshape(-1)
    modes = [_MODES.get(int(m), str(int(m))) for m in modes_raw]
    splits = np.asarray(attrs.get("nodes_splits", np.zeros(0)), dtype=np.float64).reshape(-1)
    true_ids = np.asarray(attrs.get("nodes_truenodeids", []), dtype=np.int64)
    false_ids = np.asarray(attrs.get("nodes_falsenodeids", []), dtype=np.int64)
    true_leaf = np.asarray(attrs.get("nodes_trueleafs", []), dtype=np.int64)
    false_leaf = np.asarray(attrs.get("nodes_falseleafs", []), dtype=np.int64)
    tracks = np.asarray(attrs.get("nodes_missing_value_tracks_true") or [0] * n, dtype=np.int64)
    if n == 0 or {len(a) for a in (modes, splits, true_ids, false_ids, true_leaf, false_leaf, tracks)} != {n}:
        raise NotTrees("the TreeEnsemble node's nodes_* attributes are missing or of different lengths")
    leaf_outputs = np.asarray(attrs.get("leaf_targetids", []), dtype=np.int64)
    leaf_weights = np.asarray(attrs.get("leaf_weights", np.zeros(0)), dtype=np.float64).reshape(-1)
    n_outputs = int(attrs.get("n_targets", 1))
    if len(leaf_outputs) != len(leaf_weights) or not len(leaf_outputs):
        raise NotTrees("the TreeEnsemble node's leaf_targetids and leaf_weights are missing or of different lengths")
    if leaf_outputs.min() < 0 or leaf_outputs.max() >= n_outputs:
        raise NotTrees(f"the TreeEnsemble node's leaf_targetids name targets outside 0..{n_outputs - 1}")
    aggregate = _AGGREGATES.get(int(attrs.get("aggregate_function", 1)), "unknown")
    transform = _TRANSFORMS.get(int(attrs.get("post_transform", 0)), "unknown")

    def leaf(j: int) -> dict:
        if not 0 <= j < len(leaf_weights):
            raise NotTrees(f"the TreeEnsemble node points to leaf {j}, which it does not hold")
        values = np.zeros(n_outputs)
        values[leaf_outputs[j]] = leaf_weights[j]
        return {"leaf": values}

    def node_of(key: tuple[str, int]) -> dict:
        kind, j = key
        if kind == "leaf":
            return leaf(j)
        if not 0 <= j < n:
            raise NotTrees(f"the TreeEnsemble node points to node {j}, which it does not hold")
        return {
            "mode": modes[j],
            "feature": int(features[j]),
            "threshold": float(splits[j]),
            "true": ("leaf" if true_leaf[j] else "node", int(true_ids[j])),
            "false": ("leaf" if false_leaf[j] else "node", int(false_ids[j])),
            "missing_true": bool(tracks[j]),
        }

    roots = [int(r) for r in attrs.get("tree_roots", [])]
    if not roots:
        raise NotTrees("the TreeEnsemble node names no tree roots")
    trees = [_flatten(("node", r), node_of, n_outputs, dtype) for r in roots]
    return _aggregated(trees, aggregate), np.zeros(n_outputs), transform, aggregate, None


# --- one tree in shap's arrays --------------------------------------------------------------


def _flatten(root: Any, node_of, n_outputs: int, dtype: type) -> dict:
    """Walk a tree from its root into shap's arrays, every branch as ``x <= threshold`` goes left."""
    left: list[int] = []
    right: list[int] = []
    default: list[int] = []
    features: list[int] = []
    thresholds: list[float] = []
    values: list[np.ndarray] = []
    pending = [(root, -1, "")]
    seen: set = set()
    while pending:
        key, parent, side = pending.pop()
        if key in seen:
            raise NotTrees("a tree of the graph reaches one node twice (it is not a tree)")
        seen.add(key)
        position = len(left)
        if parent >= 0:
            (left if side == "left" else right)[parent] = position
            if side == default[parent]:
                default[parent] = position
        described = node_of(key)
        if "leaf" in described:
            left.append(-1), right.append(-1), default.append(-1), features.append(-2), thresholds.append(0.0)
            values.append(np.asarray(described["leaf"], dtype=np.float64))
            continue
        mode, threshold = described["mode"], described["threshold"]
        if mode in ("LEQ", "LT"):
            on_left, on_right = described["true"], described["false"]
        elif mode in ("GT", "GTE"):  # x > t is not (x <= t), x >= t is not (x < t): the children swap
            on_left, on_right = described["false"], described["true"]
        else:
            raise NotTrees(f"a tree splits with BRANCH_{mode}, which has no `x <= threshold` form for TreeSHAP")
        cut = _cut(mode, threshold, dtype)
        missing_left = described["missing_true"] == (mode in ("LEQ", "LT"))  # the true branch is on the left
        left.append(-1), right.append(-1), features.append(described["feature"]), thresholds.append(cut)
        default.append("left" if missing_left else "right")  # replaced by the child's position when it is placed
        values.append(np.zeros(n_outputs))
        pending.append((on_right, position, "right"))
        pending.append((on_left, position, "left"))
    return {
        "children_left": np.asarray(left, dtype=np.int32),
        "children_right": np.asarray(right, dtype=np.int32),
        "children_default": np.asarray(default, dtype=np.int32),
        "features": np.asarray(features, dtype=np.int32),
        "thresholds": np.asarray(thresholds, dtype=np.float64),
        "values": np.vstack(values),
        "node_sample_weight": np.zeros(len(left)),
    }


def _aggregated(trees: list[dict], aggregate: str) -> list[dict]:
    if aggregate == "SUM":
        return trees
    if aggregate == "AVERAGE":
        return [{**tree, "values": tree["values"] / len(trees)} for tree in trees]
    raise NotTrees(f"the trees are combined by {aggregate}; TreeSHAP explains a sum or an average of trees")
