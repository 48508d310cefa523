"""Data drift from window aggregates: a feature's histogram in a window against its reference histogram.

Monitoring keeps, per window, counts rather than rows (issue 15: "monitoring data grows with the number of
windows, not of predictions"), so every measure here takes two count vectors over the same bins:

- numeric features are binned at the reference's quantiles (``numeric_edges``; the outer edges are -inf and
  +inf, so nothing falls outside), categorical ones by category (``category_counts``, with an ``unseen``
  bucket for values the reference never had);
- ``psi``: the population stability index, sum((q - p) * ln(q / p)) over bins, with empty bins smoothed by
  ``PSI_EPSILON`` (the usual reading: < 0.1 stable, 0.1-0.25 moderate, > 0.25 a shift);
- ``js_distance``: the Jensen-Shannon distance (base 2, in [0, 1]), as ``scipy.spatial.distance.jensenshannon``;
- ``ks``: the two-sample Kolmogorov-Smirnov statistic on the binned distributions (the largest gap between
  the cumulative proportions at a bin edge; equal to ``scipy.stats.ks_2samp``'s when every distinct value
  has its own bin) and its asymptotic p-value;
- ``wasserstein``: the earth mover's distance between the binned distributions, each bin at its
  representative value (the reference's mean in it), as ``scipy.stats.wasserstein_distance`` with weights:
  exact when every distinct value has its own bin, an estimate of the same order with ten quantile bins;
- ``chi_square``: the chi-square test of homogeneity on the 2 x k table, as ``scipy.stats.chi2_contingency``
  (bins empty in both are left out).

Pure numpy and scipy: the same counts give the same figures on every machine (no sampling, no threads).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from scipy import stats
from scipy.spatial import distance

PSI_EPSILON = 1e-4
UNSEEN = "__unseen__"


def numeric_edges(reference: Sequence[float] | np.ndarray, bins: int = 10) -> np.ndarray:
    """Bin edges at the reference's quantiles (duplicates merged), with -inf and +inf as the outer edges."""
    values = np.asarray(reference, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError("the reference has no finite value to bin")
    inner = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
    return np.concatenate(([-np.inf], inner, [np.inf]))


def numeric_counts(values: Sequence[float] | np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin (``edges[i] < x <= edges[i+1]``; the first bin takes -inf); non-finite values are left out."""
    data = np.asarray(values, dtype=float)
    data = data[np.isfinite(data)]
    index = np.searchsorted(edges, data, side="left") - 1
    index = np.clip(index, 0, len(edges) - 2)
    return np.bincount(index, minlength=len(edges) - 1).astype(np.int64)


def category_counts(values: Iterable, categories: Sequence[str]) -> np.ndarray:
    """Counts per reference category, and a last bucket for categories the reference never had."""
    position = {c: i for i, c in enumerate(categories)}
    counts = np.zeros(len(categories) + 1, dtype=np.int64)
    for value in values:
        counts[position.get(str(value), len(categories))] += 1
    return counts


def _proportions(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    if total <= 0:
        raise ValueError("a window with no observation has no distribution")
    return counts / total


def psi(reference: np.ndarray, current: np.ndarray, epsilon: float = PSI_EPSILON) -> float:
    p = np.maximum(_proportions(reference), epsilon)
    q = np.maximum(_proportions(current), epsilon)
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(reference: np.ndarray, current: np.ndarray) -> float:
    return float(distance.jensenshannon(_proportions(reference), _proportions(current), base=2))


def ks(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """(statistic, asymptotic p-value) of the two-sample Kolmogorov-Smirnov test on binned counts."""
    n, m = float(np.sum(reference)), float(np.sum(current))
    gap = np.abs(np.cumsum(_proportions(reference)) - np.cumsum(_proportions(current)))
    statistic = float(np.max(gap))
    effective = n * m / (n + m)
    return statistic, float(stats.kstwobign.sf(statistic * np.sqrt(effective)))


def representatives(edges: np.ndarray, reference: Sequence[float] | np.ndarray) -> np.ndarray:
    """A value per bin for the earth mover's distance: the mean of the reference's values in the bin (a bin
    the reference left empty takes its midpoint, the open outer bins bounded by the reference's extremes)."""
    values = np.asarray(reference, dtype=float)
    values = values[np.isfinite(values)]
    counts = numeric_counts(values, edges)
    index = np.clip(np.searchsorted(edges, values, side="left") - 1, 0, len(edges) - 2)
    sums = np.bincount(index, weights=values, minlength=len(edges) - 1)
    bounded = np.clip(edges, values.min(), values.max())
    midpoints = (bounded[:-1] + bounded[1:]) / 2
    return np.where(counts > 0, sums / np.maximum(counts, 1), midpoints)


def wasserstein(points: np.ndarray, reference: np.ndarray, current: np.ndarray) -> float:
    return float(stats.wasserstein_distance(points, points, u_weights=reference, v_weights=current))


def chi_square(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """(statistic, p-value) of the chi-square test that both windows come from one distribution."""
    table = np.vstack([np.asarray(reference, dtype=float), np.asarray(current, dtype=float)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0, 1.0
    result = stats.chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


def numeric_drift(reference_counts: np.ndarray, current_counts: np.ndarray, points: np.ndarray) -> dict:
    statistic, p_value = ks(reference_counts, current_counts)
    return {
        "psi": psi(reference_counts, current_counts),
        "ks": statistic,
        "ks_p_value": p_value,
        "js": js_distance(reference_counts, current_counts),
        "wasserstein": wasserstein(points, reference_counts, current_counts),
    }


def categorical_drift(reference_counts: np.ndarray, current_counts: np.ndarray) -> dict:
    statistic, p_value = chi_square(reference_counts, current_counts)
    return {
        "psi": psi(reference_counts, current_counts),
        "chi_square": statistic,
        "chi_square_p_value": p_value,
        "js": js_distance(reference_counts, current_counts),
        "unseen": int(current_counts[-1]),
    }
