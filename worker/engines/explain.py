"""Explainability engine: SHAP values for a model version on its evaluation rows.

shap is the definition. Tree models get ``shap.TreeExplainer`` (exact, path-dependent TreeSHAP,
a fraction of a second per thousand rows); tree ensembles uploaded as ONNX are read out of the
graph (``onnx_trees``) and get interventional TreeSHAP against a background sample, since ONNX
keeps no node sample counts; every other model gets shap's permutation explainer with an
``Independent`` masker over a background sample and a budget of ``max_evals`` coalitions per
row. Models are loaded by ``explainable.load_explainable`` as safely as verification loads them
(nothing is unpickled).

What is explained (the summary's ``output``):

- XGBoost and LightGBM: the booster's margin (``output_margin`` / ``raw_score``): the log-odds
  of the positive class for binary objectives (``"log_odds"``), the prediction itself for
  identity-link regression (``"raw"``).
- scikit-learn ``DecisionTree``, ``RandomForest``, ``ExtraTrees`` (through skops):
  ``predict_proba[:, 1]`` of a binary classifier (``"probability"``), ``predict`` of a
  regressor; ``GradientBoosting`` and ``HistGradientBoosting`` classifiers: their
  ``decision_function`` (``"log_odds"``).
- ONNX tree ensembles (``TreeEnsembleClassifier``, ``TreeEnsembleRegressor``, ``TreeEnsemble``):
  the tree operator's score before its ``post_transform``: ``"log_odds"`` under ``LOGISTIC`` (or
  the difference of two ``SOFTMAX`` margins), ``"probability"`` for a classifier without a
  transform (a forest's averaged leaf probabilities), ``"raw"`` for a regression.
- Other ONNX models: the positive-class column of the probabilities output of a classifier
  converted with ``zipmap=False`` (``"probability"``); a model with one float output (a
  regressor) as is.
- Any other skops model (pipelines, linear models, ...): ``predict_proba[:, 1]`` of a binary
  classifier, else ``decision_function``, else ``predict``.

Binary classifiers and single-output models only; more classes are refused in words. The
first permutation explanation in a process compiles shap's numba kernels (10 to 20 s on a
busy core); ``warm_up()`` does that ahead of time.

## Explainability summary (`assay.explain/v1`)

An explainability run stores one strict-JSON summary (no NaN, no infinities) and a CSV table
of SHAP values. Rows are numbered as indices into the evaluation rows the worker read (the
dataset's feature columns in schema order, possibly subsampled already). SHAP values are in
the model's explained output space: for every explained row,
`base_value + sum(shap) == prediction`.

- `schema`: `"assay.explain/v1"`.
- `method`: `"tree"` (TreeSHAP) or `"permutation"` (budgeted permutation estimate).
- `algorithm`: `"tree_path_dependent"` (the library's own trees, with their training covers),
  `"tree_interventional"` (trees read from an ONNX graph, against the background rows) or
  `"permutation"`.
- `tree_source`: `"native"` or `"onnx"` for TreeSHAP, `null` for permutation.
- `tree_refusal`: for an ONNX graph that holds a tree ensemble the reader cannot use (a split
  TreeSHAP cannot represent, a scaler before the trees, ...), why it was explained by
  permutation instead; otherwise `null`.
- `explainer`: `"shap.TreeExplainer"` or `"shap.explainers.PermutationExplainer"`.
- `output`: what is explained: `"log_odds"` (margin of a binary booster or gradient boosting
  classifier), `"probability"` (positive-class probability) or `"raw"` (the model's own
  output, e.g. a regression).
- `model`: `{"format", "type", "positive_class"}`: artifact format, the loaded model's type,
  the class whose score is explained (`null` for regressions, and for ONNX models without
  trees, whose graph does not name it; an ONNX tree classifier's last class label).
- `feature_names`: as given, in column order.
- `n_rows`: evaluation rows given; `n_rows_explained`: rows explained, a seeded sample of
  `sample_size` rows that always includes the rows asked for.
- `seed`: seeds the row sample, the background sample and the permutations.
- `base_value`: the expected output the SHAP values start from (TreeSHAP's expected value;
  for permutation, the mean output over the background sample).
- `global`: one `{"feature", "mean_abs_shap", "rank"}` per feature, by mean absolute SHAP
  value over the explained rows, descending (rank 1 first; ties keep column order).
- `beeswarm`: `{"features": [...], "points": {feature: [[value, shap], ...]}}` for the top 20
  features by rank, at most 300 points each (the same rows for every feature). `value` is the
  feature value scaled to 0..1 between its 5th and 95th percentile over the explained rows
  (clipped; `null` for a constant feature); `shap` is rounded to 6 significant digits.
- `local`: the rows asked for, then rows at evenly spaced quantiles of the prediction (lowest
  and highest included) up to `local_count` in all; each
  `{"row", "requested", "prediction", "base_value", "contributions"}` with contributions
  `[{"feature", "value", "shap"}]` sorted by absolute SHAP value, largest first.
- `additivity`: `{"checked": true, "max_abs_error", "tolerance", "rtol", "passed"}`: the
  largest absolute difference between `base_value + sum(shap)` and the model's own output
  (`prediction`) over every explained row, against
  `tolerance = rtol * max(1, largest absolute prediction)`. `rtol` is 1e-9 where both sides
  are float64 (scikit-learn, LightGBM, float64 ONNX) and 1e-5, about 100 float32 ulps, where
  the model computes in float32 (XGBoost's leaves and contributions, a float32 ONNX graph,
  whose kernels may sum in a different order for a different batch; and every ONNX tree
  ensemble, since shap's interventional TreeSHAP holds thresholds and leaf values in float32).
  TreeSHAP is exact; the
  permutation estimate is additive by construction (each permutation's forward and backward
  passes telescope from the background mean to the row's output), so any error beyond
  rounding means a wrong explanation.
- `budget`: `{"max_evals", "background_size", "sample_size", "evaluations",
  "evaluations_per_row", "model_rows"}`: for permutation, the coalition budget per row, the
  background rows used, the sample size asked for, the coalitions evaluated in total and for
  the costliest row (never above `max_evals`), and the rows passed to the model. `null` where
  it does not apply: TreeSHAP evaluates no coalitions, and path-dependent TreeSHAP uses no
  background (interventional TreeSHAP records its `background_size`).
- `engine`: versions of `shap`, `numpy` and the model's library (`scikit-learn` and `skops`,
  `xgboost`, `lightgbm`, or `onnxruntime` and `onnx`).

The SHAP table (`Explanation.csv_bytes()`) has one line per explained row: `row`,
`base_value`, `prediction`, then one column per feature holding its SHAP value (shortest
exact float text, so the table reproduces the numbers bit for bit).
"""

from __future__ import annotations

import csv
import io
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from worker.engines.explainable import LIBRARIES, ExplainableModel, load_explainable

SCHEMA = "assay.explain/v1"
DEFAULT_MAX_EVALS = 500
BEESWARM_FEATURES = 20
BEESWARM_POINTS = 300
MAX_REQUESTED_ROWS = 100
TREE_BATCH_ROWS = 2000
PERMUTATION_PROGRESS_STEPS = 20

ProgressFn = Callable[[float], None]


@dataclass(frozen=True)
class Explanation:
    """The summary and the per-row SHAP values behind it (rows are indices into X, ascending)."""

    summary: dict
    rows: np.ndarray
    values: np.ndarray  # (len(rows), n_features)
    base_values: np.ndarray
    predictions: np.ndarray

    def csv_bytes(self) -> bytes:
        """The SHAP table: row, base_value, prediction, then one SHAP column per feature."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["row", "base_value", "prediction", *self.summary["feature_names"]])
        for i, row in enumerate(self.rows.tolist()):
            numbers = [self.base_values[i], self.predictions[i], *self.values[i]]
            writer.writerow([row, *(repr(float(v)) for v in numbers)])
        return out.getvalue().encode()


# --- inputs -------------------------------------------------------------------------------


def _checked_matrix(X: Any, feature_names: Sequence[str]) -> np.ndarray:
    try:
        matrix = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the feature columns are not all numbers: {exc}") from exc
    if matrix.ndim != 2:
        raise ValueError(f"the features must be a table of rows × columns, got shape {matrix.shape}")
    if matrix.shape[0] == 0:
        raise ValueError("there are no rows to explain")
    names = list(feature_names)
    if len(names) != matrix.shape[1]:
        raise ValueError(f"{len(names)} feature name(s) were given for {matrix.shape[1]} feature column(s)")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"feature names must be distinct; repeated: {', '.join(repeated)}")
    bad = ~np.isfinite(matrix)
    if bad.any():
        counts = bad.sum(axis=0)
        where = ", ".join(f"{names[j]} ({counts[j]} row(s))" for j in np.flatnonzero(counts)[:5])
        raise ValueError(f"the feature columns hold missing or infinite values: {where}; fill or drop those rows first")
    return matrix


def _checked_model(model: ExplainableModel, feature_names: list[str], width: int) -> None:
    if model.n_features is not None and model.n_features != width:
        raise ValueError(f"the model expects {model.n_features} feature(s), the data has {width}")
    if model.feature_names is not None and list(model.feature_names) != feature_names:
        raise ValueError(
            f"the model was trained on features named {', '.join(model.feature_names)}; "
            f"the feature columns are {', '.join(feature_names)} (same names, same order needed)"
        )


def _checked_rows(rows: Sequence[int], n: int) -> list[int]:
    wanted: list[int] = []
    for row in rows:
        if isinstance(row, bool) or not isinstance(row, (int, np.integer)):
            raise ValueError(f"rows to explain are row numbers; got {row!r}")
        if not 0 <= int(row) < n:
            raise ValueError(f"row {row} is not among the {n} evaluation rows (0 to {n - 1})")
        if int(row) not in wanted:
            wanted.append(int(row))
    if len(wanted) > MAX_REQUESTED_ROWS:
        raise ValueError(f"at most {MAX_REQUESTED_ROWS} rows can be explained locally; {len(wanted)} were asked for")
    return wanted


def _sample(n: int, size: int, rng: np.random.Generator, keep: Sequence[int] = ()) -> np.ndarray:
    """``size`` row numbers out of ``n`` (all when ``n <= size``), always including ``keep``; ascending."""
    if n <= size:
        return np.arange(n)
    kept = np.asarray(sorted(set(keep)), dtype=np.int64)
    others = np.setdiff1d(np.arange(n), kept)
    extra = rng.choice(others, size=max(0, size - len(kept)), replace=False)
    return np.sort(np.concatenate([kept, extra]).astype(np.int64))


# --- explaining ---------------------------------------------------------------------------


def _tree_values(
    model: ExplainableModel, x: np.ndarray, background: np.ndarray | None, progress: ProgressFn | None
) -> tuple[np.ndarray, float]:
    """TreeSHAP values and the expected value: path-dependent, or interventional against ``background``."""
    import shap

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LightGBM's "output has changed to a list" notice
        try:
            if background is None:
                explainer = shap.TreeExplainer(model.native)
            else:
                explainer = shap.TreeExplainer(model.native, data=background, feature_perturbation="interventional")
        except Exception as exc:  # shap refuses some variants (e.g. a custom init estimator) by raising
            raise ValueError(f"shap's TreeExplainer cannot read this {model.type} model: {exc}") from exc
        parts = []
        for start in range(0, len(x), TREE_BATCH_ROWS):
            parts.append(np.asarray(explainer.shap_values(x[start : start + TREE_BATCH_ROWS], check_additivity=False)))
            if progress is not None:
                progress(min(len(x), start + TREE_BATCH_ROWS) / len(x))
    values = np.concatenate(parts).astype(np.float64)
    expected = np.ravel(np.asarray(explainer.expected_value, dtype=np.float64))
    if values.ndim == 3:  # a classifier of probabilities: one slice per class, the positive class last
        values, expected = values[..., -1], expected[-1:]
    return values, float(expected[-1])


class _Budget:
    """Counts the coalitions the permutation explainer evaluates, per row, and the rows the model sees."""

    def __init__(self) -> None:
        self.per_row: list[int] = []
        self.model_rows = 0


def _counting_masker(background: np.ndarray, budget: _Budget):
    import shap

    class CountingIndependent(shap.maskers.Independent):
        masking = False

        def invariants(self, x):
            if not self.masking:  # shap's MaskedModel asks once per row, before any coalition
                budget.per_row.append(0)
            return super().invariants(x)

        def __call__(self, mask, x):
            mask = np.asarray(mask)
            # an integer array is a batch of delta masks, one coalition each (shap's delta masking)
            budget.per_row[-1] += int((mask >= 0).sum()) if np.issubdtype(mask.dtype, np.integer) else 1
            self.masking = True
            try:
                return super().__call__(mask, x)
            finally:
                self.masking = False

    return CountingIndependent(background, max_samples=len(background))


def _permutation_values(
    model: ExplainableModel,
    x: np.ndarray,
    background: np.ndarray,
    max_evals: int,
    seed: int,
    budget: _Budget,
    progress: ProgressFn | None,
) -> tuple[np.ndarray, np.ndarray]:
    import shap

    def f(rows: np.ndarray) -> np.ndarray:
        budget.model_rows += len(rows)
        return model.predict(rows)

    # shap draws its permutations from numpy's global generator; seed it and put it back after.
    state = np.random.get_state()
    try:
        explainer = shap.explainers.PermutationExplainer(f, _counting_masker(background, budget), seed=seed)
        step = max(1, math.ceil(len(x) / PERMUTATION_PROGRESS_STEPS))
        values, bases = [], []
        for i in range(len(x)):
            # One row per call: in shap 0.51 the second and later rows of a call also compute main
            # effects (the list collecting them is passed on as the flag), k + 1 coalitions beyond
            # the budget, so one row per call keeps every row within max_evals.
            part = explainer(x[i : i + 1], max_evals=max_evals, silent=True)
            values.append(np.asarray(part.values, dtype=np.float64))
            bases.append(np.asarray(part.base_values, dtype=np.float64).reshape(-1))
            if progress is not None and ((i + 1) % step == 0 or i + 1 == len(x)):
                progress((i + 1) / len(x))
    finally:
        np.random.set_state(state)
    return np.concatenate(values), np.concatenate(bases)


def explain_with_values(
    model_path: str | Path,
    fmt: str,
    X: Any,
    feature_names: Sequence[str],
    *,
    sample_size: int = 200,
    background_size: int = 100,
    max_evals: int | None = None,
    rows: Sequence[int] = (),
    local_count: int = 5,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> Explanation:
    """Explain a model on evaluation rows: the ``assay.explain/v1`` summary and the SHAP table behind it.

    ``X`` holds the evaluation rows (float, columns in the model's training order, named by
    ``feature_names``); ``sample_size`` of them are explained (a seeded sample, always with the
    ``rows`` asked for locally). Tree models use TreeSHAP; others the permutation explainer
    over ``background_size`` rows of X with ``max_evals`` coalitions per row (default 500, at
    least 2 × features + 1). ``progress(fraction)`` is called as batches of rows finish.
    Bad input raises ``ValueError``, a model that does not load ``loaders.LoadError``, each
    with a sentence for people.
    """
    names = [str(n) for n in feature_names]
    matrix = _checked_matrix(X, names)
    n, width = matrix.shape
    requested = _checked_rows(rows, n)
    for label, number in (("sample_size", sample_size), ("background_size", background_size)):
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise ValueError(f"{label} must be a whole number of rows, at least 1; got {number!r}")
    if isinstance(local_count, bool) or not isinstance(local_count, int) or local_count < 0:
        raise ValueError(f"local_count must be a whole number, 0 or more; got {local_count!r}")
    model = load_explainable(model_path, fmt)
    _checked_model(model, names, width)

    rng = np.random.default_rng(seed)
    explained = _sample(n, sample_size, rng, requested)
    x = matrix[explained]
    budget = {"max_evals": None, "background_size": None, "sample_size": sample_size}
    budget.update({"evaluations": None, "evaluations_per_row": None, "model_rows": None})
    if model.method == "tree":
        background = None
        if model.tree_source == "onnx":
            # the rows as the graph reads them: onnxruntime compares float32 inputs in float32
            background = matrix[_sample(n, background_size, rng)]
            background = background.astype(model.native["input_dtype"]).astype(np.float64)
            budget.update(background_size=len(background))
        values, base = _tree_values(model, x, background, progress)
        base_values = np.full(len(x), base)
    else:
        smallest = 2 * width + 1
        evals = max(DEFAULT_MAX_EVALS, smallest) if max_evals is None else max_evals
        if isinstance(evals, bool) or not isinstance(evals, int) or evals < smallest:
            raise ValueError(
                f"max_evals={max_evals!r} is below the smallest budget for {width} feature(s): "
                f"2 × {width} + 1 = {smallest} coalitions per row (one permutation, forward and back)"
            )
        background = matrix[_sample(n, background_size, rng)]
        counted = _Budget()
        values, base_values = _permutation_values(model, x, background, evals, seed, counted, progress)
        base = float(base_values[0])
        budget.update(
            max_evals=evals,
            background_size=len(background),
            evaluations=sum(counted.per_row),
            evaluations_per_row=max(counted.per_row),
            model_rows=counted.model_rows,
        )
    predictions = model.predict(x)
    if not (np.isfinite(values).all() and np.isfinite(base_values).all() and np.isfinite(predictions).all()):
        raise ValueError("the model's output or its SHAP values are not finite numbers on these rows")

    summary = {
        "schema": SCHEMA,
        "method": model.method,
        "algorithm": _algorithm(model),
        "explainer": "shap.TreeExplainer" if model.method == "tree" else "shap.explainers.PermutationExplainer",
        "output": model.output,
        "model": {"format": model.fmt, "type": model.type, "positive_class": model.positive_class},
        "tree_source": model.tree_source,
        "tree_refusal": model.tree_refusal,
        "feature_names": names,
        "n_rows": n,
        "n_rows_explained": len(explained),
        "seed": seed,
        "base_value": base,
        "global": _global(values, names),
        "beeswarm": _beeswarm(values, x, names, rng),
        "local": _local(explained, requested, local_count, x, values, base_values, predictions, names),
        "additivity": _additivity(values, base_values, predictions, model.rtol),
        "budget": budget,
        "engine": _engine_versions(model.fmt),
    }
    return Explanation(summary=summary, rows=explained, values=values, base_values=base_values, predictions=predictions)


def explain(
    model_path: str | Path,
    fmt: str,
    X: Any,
    feature_names: Sequence[str],
    *,
    sample_size: int = 200,
    background_size: int = 100,
    max_evals: int | None = None,
    rows: Sequence[int] = (),
    local_count: int = 5,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> dict:
    """The ``assay.explain/v1`` summary alone; see ``explain_with_values``."""
    return explain_with_values(
        model_path,
        fmt,
        X,
        feature_names,
        sample_size=sample_size,
        background_size=background_size,
        max_evals=max_evals,
        rows=rows,
        local_count=local_count,
        seed=seed,
        progress=progress,
    ).summary


# --- the summary --------------------------------------------------------------------------


def _algorithm(model: ExplainableModel) -> str:
    if model.method != "tree":
        return "permutation"
    return "tree_interventional" if model.tree_source == "onnx" else "tree_path_dependent"


def _ranked(values: np.ndarray) -> np.ndarray:
    return np.argsort(-np.abs(values).mean(axis=0), kind="stable")


def _global(values: np.ndarray, names: list[str]) -> list[dict]:
    mean_abs = np.abs(values).mean(axis=0)
    return [
        {"feature": names[j], "mean_abs_shap": float(mean_abs[j]), "rank": rank}
        for rank, j in enumerate(_ranked(values).tolist(), start=1)
    ]


def _significant(value: float) -> float:
    return float(f"{value:.6g}")


def _scaled(column: np.ndarray) -> list[float | None]:
    """Values between 0 and 1 from the 5th to the 95th percentile (as shap's beeswarm colours them)."""
    low, high = np.percentile(column, [5, 95])
    if high <= low:
        low, high = float(column.min()), float(column.max())
    if high <= low:
        return [None] * len(column)
    return [round(float(v), 4) for v in np.clip((column - low) / (high - low), 0.0, 1.0)]


def _beeswarm(values: np.ndarray, x: np.ndarray, names: list[str], rng: np.random.Generator) -> dict:
    top = _ranked(values)[:BEESWARM_FEATURES].tolist()
    picked = np.arange(len(x)) if len(x) <= BEESWARM_POINTS else np.sort(rng.choice(len(x), BEESWARM_POINTS, False))
    points = {}
    for j in top:
        scaled = _scaled(x[:, j])
        points[names[j]] = [[scaled[i], _significant(values[i, j])] for i in picked.tolist()]
    return {"features": [names[j] for j in top], "points": points}


def _local(
    explained: np.ndarray,
    requested: list[int],
    local_count: int,
    x: np.ndarray,
    values: np.ndarray,
    base_values: np.ndarray,
    predictions: np.ndarray,
    names: list[str],
) -> list[dict]:
    position = {int(row): i for i, row in enumerate(explained.tolist())}
    chosen = [position[row] for row in requested]
    spare = min(len(explained), local_count) - len(chosen)
    if spare > 0:
        # the rest spread over the predictions: the lowest, the highest and evenly spaced quantiles between
        by_prediction = [i for i in np.argsort(predictions, kind="stable").tolist() if i not in chosen]
        picks = np.linspace(0, len(by_prediction) - 1, num=min(spare, len(by_prediction))).round().astype(int)
        chosen += [by_prediction[k] for k in dict.fromkeys(picks.tolist())]
    entries = []
    for i in chosen:
        order = np.argsort(-np.abs(values[i]), kind="stable").tolist()
        entries.append(
            {
                "row": int(explained[i]),
                "requested": int(explained[i]) in requested,
                "prediction": float(predictions[i]),
                "base_value": float(base_values[i]),
                "contributions": [
                    {"feature": names[j], "value": float(x[i, j]), "shap": float(values[i, j])} for j in order
                ],
            }
        )
    return entries


def _additivity(values: np.ndarray, base_values: np.ndarray, predictions: np.ndarray, rtol: float) -> dict:
    error = float(np.abs(base_values + values.sum(axis=1) - predictions).max())
    tolerance = rtol * max(1.0, float(np.abs(predictions).max()))
    return {"checked": True, "max_abs_error": error, "tolerance": tolerance, "rtol": rtol, "passed": error <= tolerance}


def _engine_versions(fmt: str) -> dict[str, str]:
    from importlib import metadata

    versions = {}
    for package in ("shap", "numpy", *LIBRARIES.get(fmt, ())):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    if "xgboost" in LIBRARIES.get(fmt, ()) and "xgboost" not in versions:
        import xgboost

        versions["xgboost"] = xgboost.__version__  # installed as the xgboost-cpu distribution
    return versions


def warm_up() -> None:
    """Compile shap's numba kernels now (about 15 s once per process) so the first real run does not pay it."""
    import shap

    rng = np.random.default_rng(0)
    background = rng.normal(size=(4, 2))
    state = np.random.get_state()  # the explainer seeds numpy's global generator
    try:
        explainer = shap.explainers.PermutationExplainer(
            lambda z: z.sum(axis=1), shap.maskers.Independent(background), seed=0
        )
        explainer(background[:1], max_evals=5, silent=True)
    finally:
        np.random.set_state(state)
