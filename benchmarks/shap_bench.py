"""Explainability engine against ``shap.TreeExplainer``, side by side: rows/s each, the ratio, the largest difference.

    $ASSAY_VENV/bin/python benchmarks/shap_bench.py [--rows 10000] [--onnx-rows 200] [--repeat 3]

(run from the worktree root). One model, two artifacts: a 100-tree GradientBoostingClassifier
(depth 3) on 10 features, saved with skops and converted to ONNX with skl2onnx. The same rows
are explained three ways:

- **shap** (the reference): ``shap.TreeExplainer(model).shap_values(rows)`` on the fitted model
  in memory, shap's defaults (path-dependent TreeSHAP in log-odds, its own additivity check on).
- **Assay, skops upload**: ``explain.explain_with_values`` on the skops file, everything a job
  does included: loading the artifact safely, checking the columns, TreeSHAP in batches, the
  summary (global ranking, beeswarm, local rows) and the additivity check against the model.
- **Assay, ONNX upload of the same trees**: the same call on the ONNX file. The engine reads
  the graph's trees into TreeSHAP; an ONNX graph keeps no node sample counts, so it runs
  interventional TreeSHAP over background rows, and the reference is
  ``shap.TreeExplainer(model, data=background, feature_perturbation="interventional")`` on the
  original model with the same background rows (a primary line, checked to 1e-9). Where the engine
  cannot read the trees and runs the permutation explainer, it is printed as a secondary line, labelled so,
  on ``--onnx-rows`` rows (a budget of ``--max-evals`` coalitions per row over a
  ``--background`` row sample), and its values are compared with the exact interventional
  TreeSHAP values of the positive-class probability over the same background
  (``shap.TreeExplainer(model, data=background, model_output="probability")``): the
  difference is the permutation estimate's error.

For each line: rows/s (best of ``--repeat`` runs, shap and Assay alternating), the ratio
Assay/shap, the largest absolute difference of the SHAP values and of the base value, and
whether the values are equal to shap's within 1e-9 where Assay uses TreeSHAP. shap's numba
kernels are compiled before timing (``explain.warm_up``; that one-off cost is printed too).
Figures are printed, never asserted on time; the machine's load and host speed index are
printed before and after (``benchmarks/machine.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core, as a worker has
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")  # the loaders read upload limits
os.environ.setdefault("DJANGO_DEBUG", "1")

import django  # noqa: E402
import machine  # noqa: E402

from worker.engines import explain  # noqa: E402

django.setup()

FEATURES = [f"x{i}" for i in range(10)]
EQUAL_WITHIN = 1e-9


def make_data(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, len(FEATURES)))
    y = x[:, 0] + 0.5 * x[:, 1] - x[:, 2] * x[:, 3] + 0.3 * x[:, 4] ** 2 + rng.normal(scale=0.5, size=rows) > 0.3
    return x, y.astype(int)


def write_models(folder: Path, x: np.ndarray, y: np.ndarray):
    import skops.io as sio
    from skl2onnx import to_onnx
    from sklearn.ensemble import GradientBoostingClassifier

    model = GradientBoostingClassifier(n_estimators=100, max_depth=3, random_state=0).fit(x, y)
    skops_path, onnx_path = folder / "gb.skops", folder / "gb.onnx"
    skops_path.write_bytes(sio.dumps(model))
    onnx_path.write_bytes(to_onnx(model, x[:1].astype(np.float32), options={"zipmap": False}).SerializeToString())
    return model, skops_path, onnx_path


def shap_tree(model, x: np.ndarray, **options) -> tuple[np.ndarray, float]:
    """shap as a user calls it: an explainer on the fitted model, then its SHAP values for the rows."""
    import shap

    explainer = shap.TreeExplainer(model, **options)
    values = np.asarray(explainer.shap_values(x), dtype=np.float64)
    base = float(np.ravel(np.asarray(explainer.expected_value, dtype=np.float64))[-1])
    if values.ndim == 3:  # one slice per class: the positive class last
        values = values[..., -1]
    return values, base


def best_of(repeat: int, *runs):
    """Run each callable ``repeat`` times, alternating; return (best seconds, last result) per callable."""
    best = [float("inf")] * len(runs)
    last: list = [None] * len(runs)
    for _ in range(repeat):
        for i, run in enumerate(runs):
            start = time.perf_counter()
            last[i] = run()
            best[i] = min(best[i], time.perf_counter() - start)
    return list(zip(best, last, strict=True))


def compare(
    label: str,
    rows: int,
    shap_s: float,
    ours_s: float,
    ours,
    ref_values,
    ref_base,
    exact: bool,
    reference: str = "shap",
    base_within: float = EQUAL_WITHIN,
) -> dict:
    """Print one side-by-side line and return its figures."""
    diff = float(np.abs(ours.values - ref_values).max())
    base_diff = abs(float(ours.base_values[0]) - ref_base)
    shap_rate, ours_rate = rows / shap_s, rows / ours_s
    equal = diff <= EQUAL_WITHIN and base_diff <= base_within
    within = f"{EQUAL_WITHIN:g}" + (f" (base value {base_within:g})" if base_within != EQUAL_WITHIN else "")
    verdict = (f"equal to shap within {within}: {'yes' if equal else 'NO'}") if exact else "an estimate"
    print(
        f"{label}: {rows:,} rows; {reference} {shap_rate:,.0f} rows/s ({shap_s:.3f} s), "
        f"Assay {ours_rate:,.1f} rows/s ({ours_s:.3f} s); ratio Assay/{reference} {ours_rate / shap_rate:.3g}x; "
        f"max |SHAP difference| {diff:.2e}, base value difference {base_diff:.2e}; {verdict}"
    )
    return {"shap_rate": shap_rate, "assay_rate": ours_rate, "max_abs_diff": diff, "equal": equal}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000, help="rows explained with TreeSHAP (default 10,000)")
    parser.add_argument("--onnx-rows", type=int, default=200, help="rows for the permutation explainer (default 200)")
    parser.add_argument("--background", type=int, default=100)
    parser.add_argument("--max-evals", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3, help="runs per side for the TreeSHAP lines; the best counts")
    args = parser.parse_args()
    print(machine.line())

    x_train, y_train = make_data(5_000)
    x, _ = make_data(max(args.rows, args.onnx_rows), seed=1)
    with tempfile.TemporaryDirectory() as folder:
        model, skops_path, onnx_path = write_models(Path(folder), x_train, y_train)

        start = time.perf_counter()
        explain.warm_up()
        print(f"warm-up (shap's numba kernels, once per process): {time.perf_counter() - start:.1f} s")
        loading = {}
        for path, fmt in ((skops_path, "skops"), (onnx_path, "onnx")):
            start = time.perf_counter()
            explain.load_explainable(path, fmt)
            loading[fmt] = time.perf_counter() - start
        print(
            f"loading the artifact (part of Assay's figures): skops "
            f"{loading['skops']:.3f} s, ONNX {loading['onnx']:.3f} s"
        )

        def ours(path: Path, fmt: str, rows: np.ndarray, **options):
            return explain.explain_with_values(path, fmt, rows, FEATURES, sample_size=len(rows), **options)

        rows = x[: args.rows]
        ours(skops_path, "skops", rows[:100])  # first-call costs (imports) on both sides
        shap_tree(model, rows[:100])
        (shap_s, (ref_values, ref_base)), (tree_s, tree) = best_of(
            args.repeat, lambda: shap_tree(model, rows), lambda: ours(skops_path, "skops", rows)
        )
        assert tree.summary["method"] == "tree" and tree.summary["additivity"]["passed"], tree.summary["additivity"]
        compare(
            f"TreeSHAP, skops upload ({tree.summary['output']})",
            len(rows),
            shap_s,
            tree_s,
            tree,
            ref_values,
            ref_base,
            exact=True,
        )

        if explain.load_explainable(onnx_path, "onnx").method == "tree":
            # An ONNX graph keeps no node sample counts, so its trees get interventional TreeSHAP over background
            # rows the engine samples from the explained rows: shap's reference is the same algorithm on the
            # original model with the same background rows.
            onnx = ours(onnx_path, "onnx", rows)
            size = onnx.summary["budget"]["background_size"]
            # (the engine draws them first from its seeded generator, and reads them as the float32 graph does)
            background = rows[explain._sample(len(rows), size, np.random.default_rng(onnx.summary["seed"]))]
            background = background.astype(np.float32).astype(np.float64)
            options = {"data": background, "feature_perturbation": "interventional"}
            (shap_s, (ref_onnx, ref_onnx_base)), (onnx_s, onnx) = best_of(
                args.repeat, lambda: shap_tree(model, rows, **options), lambda: ours(onnx_path, "onnx", rows)
            )
            compare(
                f"TreeSHAP, ONNX upload ({onnx.summary['output']}, {onnx.summary['algorithm']}, background {size})",
                len(rows),
                shap_s,
                onnx_s,
                onnx,
                ref_onnx,
                ref_onnx_base,
                exact=True,
                reference="shap interventional",
                # shap's interventional TreeSHAP sums float32 leaf values into its expected value
                base_within=1e-6,
            )
        else:
            few = x[: args.onnx_rows]
            options = {"background_size": args.background, "max_evals": args.max_evals}
            start = time.perf_counter()
            perm = ours(onnx_path, "onnx", few, **options)
            perm_s = time.perf_counter() - start
            assert perm.summary["additivity"]["passed"], perm.summary["additivity"]
            # The engine's background rows: its seeded sample of the rows (the explained rows are all of them).
            background = few[explain._sample(len(few), args.background, np.random.default_rng(perm.summary["seed"]))]
            start = time.perf_counter()
            exact_values, exact_base = shap_tree(
                model, few, data=background, feature_perturbation="interventional", model_output="probability"
            )
            exact_s = time.perf_counter() - start
            budget = perm.summary["budget"]
            print(
                f"secondary (the ONNX upload is explained by the permutation estimate, not TreeSHAP; "
                f"max_evals {budget['max_evals']}, background {budget['background_size']}, "
                f"{budget['evaluations_per_row']} coalitions per row, {budget['model_rows']:,} model rows):"
            )
            compare(
                f"  permutation, ONNX upload ({perm.summary['output']})",
                len(few),
                exact_s,
                perm_s,
                perm,
                exact_values,
                exact_base,
                exact=False,
                reference="shap interventional",
            )
    print(machine.line())


if __name__ == "__main__":
    main()
