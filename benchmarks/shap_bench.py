"""Explainability engine: rows per second with TreeSHAP and with the budgeted permutation explainer.

    .venv/bin/python benchmarks/shap_bench.py [--tree-rows 10000] [--permutation-rows 200] [--max-evals 500]

One model, two artifacts: a 100-tree GradientBoostingClassifier (depth 3) on 10 features,
saved with skops (explained by ``shap.TreeExplainer``, in log-odds) and converted to ONNX with
skl2onnx (explained by the permutation explainer, positive-class probability, through
onnxruntime on one thread). The permutation budget is ``--max-evals`` coalitions per row over a
``--background`` row sample. Both go through ``explain.explain_with_values``, loading included.
shap's numba kernels are compiled before timing (``explain.warm_up``; that one-off cost is
printed too). Figures are printed, never asserted on time; additivity is asserted for both.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import timeit
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from worker.engines import explain  # noqa: E402

FEATURES = [f"x{i}" for i in range(10)]


def make_data(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, len(FEATURES)))
    y = x[:, 0] + 0.5 * x[:, 1] - x[:, 2] * x[:, 3] + 0.3 * x[:, 4] ** 2 + rng.normal(scale=0.5, size=rows) > 0.3
    return x, y.astype(int)


def write_models(folder: Path, x: np.ndarray, y: np.ndarray) -> tuple[Path, Path]:
    import skops.io as sio
    from skl2onnx import to_onnx
    from sklearn.ensemble import GradientBoostingClassifier

    model = GradientBoostingClassifier(n_estimators=100, max_depth=3, random_state=0).fit(x, y)
    skops_path, onnx_path = folder / "gb.skops", folder / "gb.onnx"
    skops_path.write_bytes(sio.dumps(model))
    onnx_path.write_bytes(to_onnx(model, x[:1].astype(np.float32), options={"zipmap": False}).SerializeToString())
    return skops_path, onnx_path


def timed(path: Path, fmt: str, x: np.ndarray, **options) -> tuple[float, explain.Explanation]:
    start = time.perf_counter()
    result = explain.explain_with_values(path, fmt, x, FEATURES, **options)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree-rows", type=int, default=10_000)
    parser.add_argument("--permutation-rows", type=int, default=200)
    parser.add_argument("--background", type=int, default=100)
    parser.add_argument("--max-evals", type=int, default=500)
    args = parser.parse_args()

    cpu = min(timeit.repeat("sum(range(1000))", number=10_000, repeat=5)) / 10_000
    print(f"CPU: sum(range(1000)) takes {cpu * 1e6:.2f} µs; cores visible: {os.cpu_count()}")

    x_train, y_train = make_data(5_000)
    x, _ = make_data(max(args.tree_rows, args.permutation_rows), seed=1)
    with tempfile.TemporaryDirectory() as folder:
        skops_path, onnx_path = write_models(Path(folder), x_train, y_train)

        start = time.perf_counter()
        explain.warm_up()
        print(f"warm-up (shap's numba kernels, once per process): {time.perf_counter() - start:.1f} s")

        timed(skops_path, "skops", x[:100], sample_size=100)  # imports and first-call costs
        tree_s, tree = timed(skops_path, "skops", x[: args.tree_rows], sample_size=args.tree_rows)
        perm_s, perm = timed(
            onnx_path,
            "onnx",
            x[: args.permutation_rows],
            sample_size=args.permutation_rows,
            background_size=args.background,
            max_evals=args.max_evals,
        )

        loading = {}
        for path, fmt in ((skops_path, "skops"), (onnx_path, "onnx")):
            start = time.perf_counter()
            explain.load_explainable(path, fmt)
            loading[fmt] = time.perf_counter() - start

    for result in (tree, perm):
        assert result.summary["additivity"]["passed"], result.summary["additivity"]
    tree_rate = tree.summary["n_rows_explained"] / tree_s
    perm_rate = perm.summary["n_rows_explained"] / perm_s
    budget = perm.summary["budget"]
    print(
        f"TreeSHAP     (skops, {tree.summary['output']}): {tree.summary['n_rows_explained']:,} rows in "
        f"{tree_s:.2f} s = {tree_rate:,.0f} rows/s (loading the model {loading['skops']:.2f} s of it); "
        f"additivity error {tree.summary['additivity']['max_abs_error']:.1e}"
    )
    print(
        f"permutation  (ONNX, {perm.summary['output']}): {perm.summary['n_rows_explained']:,} rows in "
        f"{perm_s:.2f} s = {perm_rate:,.1f} rows/s (loading {loading['onnx']:.2f} s); max_evals {budget['max_evals']}, "
        f"background {budget['background_size']}, {budget['evaluations_per_row']} coalitions per row, "
        f"{budget['model_rows']:,} model rows; additivity error {perm.summary['additivity']['max_abs_error']:.1e}"
    )
    print(f"ratio: TreeSHAP explains {tree_rate / perm_rate:,.0f}x more rows per second")


if __name__ == "__main__":
    main()
