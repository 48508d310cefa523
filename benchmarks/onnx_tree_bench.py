"""SHAP for a tree model uploaded as ONNX: TreeSHAP on the trees read from the graph, against the
permutation explainer the graph used to get, and against shap's TreeExplainer on the original model.

    .venv/bin/python benchmarks/onnx_tree_bench.py [--tree-rows 2000] [--permutation-rows 100] [--background 100]

One model: a 100-tree GradientBoostingClassifier (depth 3) on 10 features, converted to ONNX by
skl2onnx. Four ways to explain the same rows, each in rows per second:

- ``onnx → TreeSHAP``: ``explain.explain_with_values`` on the ONNX upload (loading included): the
  trees are read out of the graph and explained with interventional TreeSHAP against
  ``--background`` rows of the data.
- ``onnx → permutation``: the same trees in a graph the reader refuses (one ``Mul`` by 1 after
  the scores), so the engine runs shap's permutation explainer through onnxruntime as every ONNX
  upload did before (``--max-evals`` coalitions per row over the same background).
- ``shap.TreeExplainer(original, data=background, feature_perturbation="interventional")``: the
  oracle, called directly on the scikit-learn model with the same background rows.
- ``shap.TreeExplainer(original)``: path-dependent TreeSHAP on the scikit-learn model (what a
  skops upload gets), which needs no background.

The features are multiples of 1/64, so every split threshold is a float32 number and the ONNX
graph holds the trees exactly; the largest difference between the engine's SHAP values and the
interventional oracle's is printed. Times are printed, never asserted on.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import machine  # noqa: E402
from worker.engines import explain  # noqa: E402

FEATURES = [f"x{i}" for i in range(10)]


def make_data(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(size=(rows, len(FEATURES))) * 64) / 64
    y = x[:, 0] + 0.5 * x[:, 1] - x[:, 2] * x[:, 3] + 0.3 * x[:, 4] ** 2 + rng.normal(scale=0.5, size=rows) > 0.3
    return x, y.astype(int)


def write_graphs(folder: Path, model, x: np.ndarray) -> tuple[Path, Path]:
    """The skl2onnx graph, and the same graph with a Mul by 1 after the scores (refused by the tree reader)."""
    from onnx import TensorProto, helper
    from skl2onnx import to_onnx

    graph = to_onnx(model, x[:1].astype(np.float32), options={"zipmap": False}, target_opset=17)
    trees_path = folder / "gb.onnx"
    trees_path.write_bytes(graph.SerializeToString())
    output = next(o for o in graph.graph.output if o.name == "probabilities")
    for node in graph.graph.node:
        node.output[:] = ["scores" if name == output.name else name for name in node.output]
    graph.graph.initializer.append(helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]))
    graph.graph.node.append(helper.make_node("Mul", ["scores", "one"], [output.name]))
    refused_path = folder / "gb_mul.onnx"
    refused_path.write_bytes(graph.SerializeToString())
    return trees_path, refused_path


def rate(rows: int, seconds: float) -> str:
    return f"{rows:,} rows in {seconds:.2f} s = {rows / seconds:,.1f} rows/s"


def main() -> None:
    import shap
    from sklearn.ensemble import GradientBoostingClassifier

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree-rows", type=int, default=2_000)
    parser.add_argument("--permutation-rows", type=int, default=100)
    parser.add_argument("--background", type=int, default=100)
    parser.add_argument("--max-evals", type=int, default=500)
    args = parser.parse_args()
    print(machine.line())

    x_train, y_train = make_data(5_000)
    x, _ = make_data(args.tree_rows, seed=1)
    model = GradientBoostingClassifier(n_estimators=100, max_depth=3, random_state=0).fit(x_train, y_train)
    # the background the engine draws when every row is explained (seed 0): the oracle gets the same rows
    background = x[explain._sample(len(x), args.background, np.random.default_rng(0))]

    with tempfile.TemporaryDirectory() as folder:
        trees_path, refused_path = write_graphs(Path(folder), model, x_train)
        explain.warm_up()
        explain.explain_with_values(trees_path, "onnx", x[:50], FEATURES, sample_size=50)  # first-call costs

        start = time.perf_counter()
        tree = explain.explain_with_values(
            trees_path, "onnx", x, FEATURES, sample_size=len(x), background_size=args.background
        )
        tree_s = time.perf_counter() - start

        rows = x[: args.permutation_rows]
        start = time.perf_counter()
        perm = explain.explain_with_values(
            refused_path,
            "onnx",
            rows,
            FEATURES,
            sample_size=len(rows),
            background_size=args.background,
            max_evals=args.max_evals,
        )
        perm_s = time.perf_counter() - start

    start = time.perf_counter()
    oracle = shap.TreeExplainer(model, data=background, feature_perturbation="interventional")
    expected = np.asarray(oracle.shap_values(x, check_additivity=False))
    oracle_s = time.perf_counter() - start
    start = time.perf_counter()
    np.asarray(shap.TreeExplainer(model).shap_values(x, check_additivity=False))
    path_s = time.perf_counter() - start

    for result in (tree, perm):
        assert result.summary["additivity"]["passed"], result.summary["additivity"]
    assert tree.summary["algorithm"] == "tree_interventional", tree.summary["tree_refusal"]
    assert perm.summary["algorithm"] == "permutation", perm.summary["algorithm"]
    difference = float(np.abs(tree.values - expected).max())
    n = len(x)
    print(
        f"onnx -> TreeSHAP (interventional, background {args.background}, engine, loading included): "
        f"{rate(n, tree_s)}; max |SHAP - oracle| {difference:.1e}"
    )
    print(
        f"onnx -> permutation (engine, max_evals {args.max_evals}, background {args.background}): "
        f"{rate(len(rows), perm_s)}; reason the trees were not read: {perm.summary['tree_refusal']}"
    )
    print(f"shap.TreeExplainer(original, interventional, background {args.background}): {rate(n, oracle_s)}")
    print(f"shap.TreeExplainer(original) path-dependent: {rate(n, path_s)}")
    print(
        f"ratio: onnx TreeSHAP / onnx permutation {(n / tree_s) / (len(rows) / perm_s):,.0f}x; "
        f"onnx TreeSHAP / shap interventional on the original {(n / tree_s) / (n / oracle_s):.2f}x"
    )
    print(machine.line())


if __name__ == "__main__":
    main()
