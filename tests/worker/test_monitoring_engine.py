"""Monitoring aggregates: a reference profile, window counts that add up, data quality, and drift per feature.

What monitoring relies on: storing a window's counts loses nothing drift needs (the aggregate of two batches
is the aggregate of all their rows, so a consumer can commit after each batch), bad records are counted, not
dropped, and a seeded shift in one feature is flagged on that feature alone.
"""

from __future__ import annotations

import numpy as np
import pytest

from worker.engines import monitoring

pytestmark = pytest.mark.embedded_pass  # pure numpy: no server to reach

SCHEMA = [
    {"name": "income", "type": "double", "role": "feature"},
    {"name": "age", "type": "int", "role": "feature"},
    {"name": "region", "type": "string", "role": "feature"},
    {"name": "score", "type": "double", "role": "prediction"},
    {"name": "label", "type": "int", "role": "label"},
]


def rows(rng, n, *, income_shift=0.0, west=0.3):
    return {
        "income": list(rng.normal(50_000 + income_shift, 10_000, n)),
        "age": list(rng.integers(18, 80, n)),
        "region": list(rng.choice(["east", "west", "north"], n, p=[0.7 - west, west, 0.3])),
        "score": list(rng.uniform(0, 1, n)),
        "label": list(rng.integers(0, 2, n)),
    }


@pytest.fixture
def profile():
    return monitoring.profile_reference(rows(np.random.default_rng(1), 10_000), SCHEMA)


def test_the_reference_profiles_features_and_prediction_but_not_the_label(profile):
    assert set(profile.numeric) == {"income", "age", "score"} and set(profile.categorical) == {"region"}
    assert profile.categorical["region"]["categories"] == ["east", "north", "west"]
    assert sum(profile.numeric["income"]["counts"]) == 10_000


def test_two_batches_add_up_to_the_aggregate_of_all_their_rows(profile):
    rng = np.random.default_rng(2)
    first, second = rows(rng, 700), rows(rng, 300)
    both = {k: first[k] + second[k] for k in first}
    merged = monitoring.aggregate(first, profile).merge(monitoring.aggregate(second, profile))
    whole = monitoring.aggregate(both, profile)
    assert merged.rows == whole.rows == 1_000
    assert merged.counts == whole.counts and merged.missing == whole.missing and merged.unseen == whole.unseen


def test_bad_records_are_counted_and_schema_mismatches_are_findings(profile):
    batch = {
        "income": [60_000.0, None, "", float("nan"), 10_000_000.0],
        "age": ["forty", 30, 31, 32, 33],
        "region": ["east", "mars", None, "west", "east"],
        "label": [0, 1, 0, 1, 0],
    }
    agg = monitoring.aggregate(batch, profile)
    assert agg.missing["income"] == 3 and agg.out_of_range["income"] == 1
    assert agg.unseen["region"] == 1 and agg.missing["region"] == 1
    assert "column score is missing" in agg.schema_findings
    assert "column age holds text where the reference holds numbers" in agg.schema_findings
    assert agg.missing["age"] == 1  # the text is counted, never silently dropped


def test_a_shift_in_one_feature_is_flagged_on_that_feature_alone(profile):
    window = monitoring.aggregate(rows(np.random.default_rng(3), 5_000, income_shift=8_000), profile)
    figures = monitoring.window_drift(profile, window)
    assert figures["income"]["psi"] > 0.2 and figures["income"]["ks_p_value"] < 1e-9
    for name in ("age", "score"):
        assert figures[name]["psi"] < 0.02 and figures[name]["ks_p_value"] > 1e-3, name
    assert figures["region"]["chi_square_p_value"] > 1e-3
    moved = monitoring.window_drift(
        profile, monitoring.aggregate(rows(np.random.default_rng(4), 5_000, west=0.1), profile)
    )
    assert moved["region"]["chi_square_p_value"] < 1e-9 and moved["income"]["psi"] < 0.02
