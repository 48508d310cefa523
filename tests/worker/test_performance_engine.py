"""Live performance and fairness from confusion counts: equal to scikit-learn's and fairlearn's on the same data.

The same definitions as the release-time bias report, so a live disparity can be compared with the released one.
"""

from __future__ import annotations

import numpy as np
import pytest
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from worker.engines import performance

pytestmark = pytest.mark.embedded_pass  # pure Python: no server to reach


def labelled(rng, n):
    sex = rng.choice(["f", "m"], n)
    age = rng.choice(["<30", "30-50", ">50"], n)
    y_true = rng.integers(0, 2, n)
    bias = np.where(sex == "f", 0.35, 0.55)
    y_pred = (rng.uniform(0, 1, n) < np.where(y_true == 1, bias + 0.3, bias - 0.2)).astype(int)
    return y_true, y_pred, {"sex": sex, "age": age}


def test_metrics_and_fairness_equal_scikit_learn_and_fairlearn():
    y_true, y_pred, sensitive = labelled(np.random.default_rng(5), 4_000)
    counts = performance.confusion_counts(list(y_true), list(y_pred), {k: list(v) for k, v in sensitive.items()})
    m = performance.metrics(counts["all"])
    assert m["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred), abs=1e-12)
    assert m["precision"] == pytest.approx(precision_score(y_true, y_pred), abs=1e-12)
    assert m["recall"] == pytest.approx(recall_score(y_true, y_pred), abs=1e-12)
    assert m["f1"] == pytest.approx(f1_score(y_true, y_pred), abs=1e-12)
    for column, values in sensitive.items():
        f = performance.fairness(counts["groups"][column])
        expected_dp = demographic_parity_difference(y_true, y_pred, sensitive_features=values)
        expected_eo = equalized_odds_difference(y_true, y_pred, sensitive_features=values)
        assert f["demographic_parity_difference"] == pytest.approx(expected_dp, abs=1e-12), column
        assert f["equalized_odds_difference"] == pytest.approx(expected_eo, abs=1e-12), column
    assert performance.fairness(counts["groups"]["sex"])["demographic_parity_difference"] > 0.1  # the seeded gap


def test_counts_of_two_batches_add_up_to_those_of_all_their_records():
    y_true, y_pred, sensitive = labelled(np.random.default_rng(6), 1_000)
    cols = {k: list(v) for k, v in sensitive.items()}
    first = performance.confusion_counts(list(y_true[:600]), list(y_pred[:600]), {k: v[:600] for k, v in cols.items()})
    second = performance.confusion_counts(list(y_true[600:]), list(y_pred[600:]), {k: v[600:] for k, v in cols.items()})
    assert performance.merge(first, second) == performance.confusion_counts(list(y_true), list(y_pred), cols)


def test_mismatched_records_are_refused_clearly():
    with pytest.raises(ValueError, match="one to one"):
        performance.confusion_counts([1, 0], [1])
    with pytest.raises(ValueError, match="sensitive column sex"):
        performance.confusion_counts([1, 0], [1, 0], {"sex": ["f"]})
