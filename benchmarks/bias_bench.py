"""Bias report engine against fairlearn's MetricFrame: seconds, speed-up, and the numbers compared.

    .venv/bin/python benchmarks/bias_bench.py [--rows 1000000] [--big 10000000] [--skip-big]

Data: binary y_true/y_pred and two sensitive string columns (sex: 3 groups, race: 5 groups,
unbalanced), as pyarrow arrays, the way the worker reads a dataset. The engine computes both
columns and their intersection; MetricFrame computes the intersection's six metrics and the four
disparity functions (each builds its own MetricFrame). Figures are printed, never asserted on
time; the numbers are asserted equal (1e-12). One process, one core.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import machine  # noqa: E402

from worker.engines import bias  # noqa: E402

TOL = 1e-12


def make_data(n: int, seed: int = 0):
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    sex = rng.choice(np.array(["female", "male", "other"]), n, p=[0.48, 0.48, 0.04])
    race = rng.choice(np.array(["a", "b", "c", "d", "e"]), n, p=[0.6, 0.2, 0.1, 0.07, 0.03])
    base = rng.random(n)
    y_true = (base < 0.35).astype(np.int8)
    y_pred = ((base + rng.normal(0, 0.2, n) + (sex == "male") * 0.05) < 0.4).astype(np.int8)
    return y_true, y_pred, {"sex": pa.array(sex), "race": pa.array(race)}


def run_engine(y_true, y_pred, sensitive) -> tuple[float, dict]:
    start = time.perf_counter()
    result = bias.bias_summary(y_true, y_pred, sensitive)
    return time.perf_counter() - start, result


def run_fairlearn(y_true, y_pred, sensitive) -> tuple[float, float, object, dict]:
    import pandas as pd
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
        equalized_odds_ratio,
        false_negative_rate,
        false_positive_rate,
        selection_rate,
    )
    from sklearn.metrics import accuracy_score, precision_score, recall_score

    features = pd.DataFrame({name: col.to_numpy(zero_copy_only=False) for name, col in sensitive.items()})
    metrics = {
        "selection_rate": selection_rate,
        "accuracy": accuracy_score,
        "precision": precision_score,
        "recall": recall_score,
        "false_positive_rate": false_positive_rate,
        "false_negative_rate": false_negative_rate,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        mf = MetricFrame(metrics=metrics, y_true=y_true, y_pred=y_pred, sensitive_features=features)
        frame_seconds = time.perf_counter() - start
        start = time.perf_counter()
        kw = {"sensitive_features": features}
        disparities = {
            "demographic_parity_difference": demographic_parity_difference(y_true, y_pred, **kw),
            "demographic_parity_ratio": demographic_parity_ratio(y_true, y_pred, **kw),
            "equalized_odds_difference": equalized_odds_difference(y_true, y_pred, **kw),
            "equalized_odds_ratio": equalized_odds_ratio(y_true, y_pred, **kw),
        }
        disparity_seconds = time.perf_counter() - start
    return frame_seconds, disparity_seconds, mf.by_group, disparities


def assert_identical(result: dict, by_group, disparities: dict) -> int:
    report = result["intersection"]
    ours = {tuple(g["label"]): g for g in report["groups"]}
    assert set(ours) == set(by_group.index), "same groups"
    compared = 0
    for key, row in by_group.iterrows():
        for metric, value in row.items():
            assert abs(ours[key][metric] - value) <= TOL, (key, metric, ours[key][metric], value)
            compared += 1
    for name, value in disparities.items():
        assert abs(report["disparities"][name]["value"] - value) <= TOL, (name, value)
        compared += 1
    return compared


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big", type=int, default=10_000_000)
    parser.add_argument("--skip-big", action="store_true")
    args = parser.parse_args()

    print(machine.line())

    y_true, y_pred, sensitive = make_data(args.rows)
    run_engine(y_true[:1000], y_pred[:1000], {k: v[:1000] for k, v in sensitive.items()})  # warm-up
    engine_s = min(run_engine(y_true, y_pred, sensitive)[0] for _ in range(3))
    _, result = run_engine(y_true, y_pred, sensitive)
    frame_s, disp_s, by_group, disparities = run_fairlearn(y_true, y_pred, sensitive)
    compared = assert_identical(result, by_group, disparities)
    n_groups = result["intersection"]["n_groups"]
    print(
        f"{args.rows:>11,} rows: engine {engine_s:.3f} s "
        f"(2 columns + intersection of {n_groups} groups, summary dict included)"
    )
    print(
        f"{args.rows:>11,} rows: fairlearn MetricFrame {frame_s:.2f} s "
        f"+ 4 disparity functions {disp_s:.2f} s = {frame_s + disp_s:.2f} s"
    )
    print(
        f"speed-up: {frame_s / engine_s:.0f}x against MetricFrame alone, "
        f"{(frame_s + disp_s) / engine_s:.0f}x against MetricFrame + disparities; "
        f"{compared} numbers identical to within {TOL:g}"
    )

    if not args.skip_big:
        del by_group
        y_true, y_pred, sensitive = make_data(args.big, seed=1)
        big_s, big = run_engine(y_true, y_pred, sensitive)
        print(
            f"{args.big:>11,} rows: engine {big_s:.3f} s "
            f"({args.big / big_s / 1e6:.1f} M rows/s, n_rows={big['n_rows']:,})"
        )
    print(machine.line())


if __name__ == "__main__":
    main()
