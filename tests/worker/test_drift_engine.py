"""The drift measures over window aggregates: equal to scipy's on the same data, and they tell a shift from noise.

Monitoring keeps histograms, not rows; these tests check that the figures computed from the counts are the
ones scipy computes from the raw values (to 1e-12) where the binning loses nothing, that a shifted feature is
caught, and that unshifted windows rarely raise a false alarm.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from worker.engines import drift

pytestmark = pytest.mark.embedded_pass  # pure numpy and scipy: no server to reach

INTEGER_EDGES = np.concatenate(([-np.inf], np.arange(0.5, 9.5, 1.0), [np.inf]))  # one bin per value 0..9


def integers(rng, n, shift=0.0):
    return np.clip(np.round(rng.normal(4.5 + shift, 2.0, n)), 0, 9)


def test_ks_and_wasserstein_from_counts_equal_scipy_on_the_raw_values():
    rng = np.random.default_rng(7)
    ref, cur = integers(rng, 3000), integers(rng, 2000, shift=0.4)
    rc, cc = drift.numeric_counts(ref, INTEGER_EDGES), drift.numeric_counts(cur, INTEGER_EDGES)
    assert rc.sum() == 3000 and cc.sum() == 2000
    statistic, p_value = drift.ks(rc, cc)
    assert statistic == pytest.approx(stats.ks_2samp(ref, cur).statistic, abs=1e-12)
    assert p_value == pytest.approx(stats.ks_2samp(ref, cur, method="asymp").pvalue, rel=1e-6)
    points = np.arange(10.0)
    assert drift.wasserstein(points, rc, cc) == pytest.approx(stats.wasserstein_distance(ref, cur), abs=1e-12)


def test_js_psi_and_chi_square_equal_their_definitions():
    p_counts, q_counts = np.array([50, 30, 20, 0]), np.array([20, 30, 45, 5])
    p, q = p_counts / p_counts.sum(), q_counts / q_counts.sum()
    m = (p + q) / 2
    expected_js = math.sqrt((stats.entropy(p, m) + stats.entropy(q, m)) / 2 / math.log(2))
    assert drift.js_distance(p_counts, q_counts) == pytest.approx(expected_js, abs=1e-12)
    # PSI by hand: halves against a quarter and three quarters
    assert drift.psi(np.array([1, 1]), np.array([1, 3])) == pytest.approx(
        0.25 * math.log(2) + 0.25 * math.log(1.5), abs=1e-12
    )
    # chi-square of homogeneity, written out
    table = np.vstack([p_counts, q_counts]).astype(float)
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
    chi2 = float((((table - expected) ** 2) / expected).sum())
    statistic, p_value = drift.chi_square(p_counts, q_counts)
    assert statistic == pytest.approx(chi2, abs=1e-9)
    assert p_value == pytest.approx(stats.chi2.sf(chi2, df=3), rel=1e-9)


def test_a_shifted_feature_is_caught():
    rng = np.random.default_rng(11)
    reference = rng.normal(0.0, 1.0, 20_000)
    edges = drift.numeric_edges(reference)
    assert len(edges) == 11 and edges[0] == -np.inf and edges[-1] == np.inf
    rc = drift.numeric_counts(reference, edges)
    figures = drift.numeric_drift(
        rc, drift.numeric_counts(rng.normal(0.5, 1.0, 5_000), edges), drift.representatives(edges, reference)
    )
    assert figures["psi"] > 0.2 and figures["ks_p_value"] < 1e-9 and figures["js"] > 0.1
    assert figures["wasserstein"] == pytest.approx(0.5, abs=0.05)  # ten quantile bins: an estimate of the shift


def test_unshifted_windows_rarely_raise_an_alarm():
    """The false-alarm rate of the KS test at 1 %, over 300 windows drawn from the reference's distribution."""
    rng = np.random.default_rng(3)
    reference = rng.normal(0.0, 1.0, 20_000)
    edges = drift.numeric_edges(reference)
    rc = drift.numeric_counts(reference, edges)
    alarms = sum(drift.ks(rc, drift.numeric_counts(rng.normal(0.0, 1.0, 1_000), edges))[1] < 0.01 for _ in range(300))
    psi_alarms = sum(drift.psi(rc, drift.numeric_counts(rng.normal(0.0, 1.0, 1_000), edges)) > 0.1 for _ in range(300))
    assert alarms / 300 <= 0.02 and psi_alarms == 0


def test_categories_count_the_unseen_and_a_changed_mix_is_caught():
    categories = ["a", "b", "c"]
    ref = drift.category_counts(["a"] * 500 + ["b"] * 300 + ["c"] * 200, categories)
    cur = drift.category_counts(["a"] * 200 + ["b"] * 300 + ["c"] * 450 + ["z"] * 50, categories)
    assert list(ref) == [500, 300, 200, 0] and list(cur) == [200, 300, 450, 50]
    figures = drift.categorical_drift(ref, cur)
    assert figures["unseen"] == 50 and figures["chi_square_p_value"] < 1e-12 and figures["psi"] > 0.25
    same = drift.categorical_drift(ref, drift.category_counts(["a"] * 50 + ["b"] * 30 + ["c"] * 20, categories))
    assert same["chi_square_p_value"] > 0.5 and same["psi"] < 1e-9


def test_bad_input_is_refused_clearly():
    with pytest.raises(ValueError, match="no finite value"):
        drift.numeric_edges([float("nan")])
    with pytest.raises(ValueError, match="no observation"):
        drift.psi(np.array([1, 2]), np.array([0, 0]))
