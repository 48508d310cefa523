"""The bias engine against fairlearn, its definition: same groups, same numbers to 1e-12."""

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
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

from worker.engines import bias

TOL = 1e-12
# fairlearn refuses missing labels; the engine makes them one group (None). Compare with a sentinel.
SENTINEL = "__missing__"
NUMERIC_SENTINEL = -999.0
FAIRLEARN_METRICS = {
    "selection_rate": selection_rate,
    "accuracy": accuracy_score,
    "precision": precision_score,
    "recall": recall_score,
    "false_positive_rate": false_positive_rate,
    "false_negative_rate": false_negative_rate,
}


def _sentinel(values) -> object:
    present = [v for v in np.asarray(values, dtype=object) if bias._json_label(v) is not None]
    numeric = all(isinstance(v, (int, float, np.number)) for v in present)
    return NUMERIC_SENTINEL if numeric else SENTINEL


def _fill_missing(values) -> np.ndarray:
    arr = np.asarray(values, dtype=object)
    fill = _sentinel(values)
    return np.array([fill if bias._json_label(v) is None else v for v in arr], dtype=object)


def _key(label, sentinels: list) -> tuple:
    parts = label if isinstance(label, list) else [label]
    return tuple(fill if p is None else p for p, fill in zip(parts, sentinels, strict=True))


def _fairlearn_frame(y_true, y_pred, sensitive: dict) -> pd.DataFrame:
    features = pd.DataFrame({name: _fill_missing(values) for name, values in sensitive.items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mf = MetricFrame(metrics=FAIRLEARN_METRICS, y_true=y_true, y_pred=y_pred, sensitive_features=features)
    return mf.by_group, features


def _fairlearn_disparities(y_true, y_pred, features) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "demographic_parity_difference": demographic_parity_difference(y_true, y_pred, sensitive_features=features),
            "demographic_parity_ratio": demographic_parity_ratio(y_true, y_pred, sensitive_features=features),
            "equalized_odds_difference": equalized_odds_difference(y_true, y_pred, sensitive_features=features),
            "equalized_odds_ratio": equalized_odds_ratio(y_true, y_pred, sensitive_features=features),
        }


def _assert_close(ours, theirs, what: str) -> None:
    if theirs is None or (isinstance(theirs, float) and math.isnan(theirs)):
        assert ours is None, f"{what}: fairlearn gives NaN, engine gives {ours}"
    else:
        assert ours is not None and abs(ours - float(theirs)) <= TOL, f"{what}: {ours} != {theirs}"


def _assert_report_matches(report: dict, y_true, y_pred, sensitive: dict) -> None:
    expected, features = _fairlearn_frame(y_true, y_pred, sensitive)
    index = [k if isinstance(k, tuple) else (k,) for k in expected.index]
    sentinels = [_sentinel(values) for values in sensitive.values()]
    ours = {_key(g["label"], sentinels): g for g in report["groups"]}
    assert set(ours) == set(index), "the engine reports exactly the groups MetricFrame reports"
    for key, (_, row) in zip(index, expected.iterrows(), strict=True):
        group = ours[key]
        for metric in FAIRLEARN_METRICS:
            _assert_close(group[metric], row[metric], f"{key} {metric}")
        assert group["count"] == int((features.apply(tuple, axis=1) == key).sum())
    for name, value in _fairlearn_disparities(y_true, y_pred, features).items():
        _assert_close(report["disparities"][name]["value"], value, name)


def _check(y_true, y_pred, sensitive: dict) -> dict:
    result = bias.bias_summary(y_true, y_pred, sensitive)
    for name, values in sensitive.items():
        _assert_report_matches(result["by_column"][name], y_true, y_pred, {name: values})
    if len(sensitive) > 1:
        _assert_report_matches(result["intersection"], y_true, y_pred, sensitive)
    json.dumps(result, allow_nan=False)  # the summary is strict JSON
    return result


def _labels(rng, n: int, p_true=0.4, p_pred=0.5):
    return (rng.random(n) < p_true).astype(int), (rng.random(n) < p_pred).astype(int)


@pytest.mark.parametrize("seed", range(5))
def test_two_groups_match_fairlearn(seed):
    # given
    rng = np.random.default_rng(seed)
    y_true, y_pred = _labels(rng, 500)
    # when / then
    _check(y_true, y_pred, {"sex": rng.choice(["F", "M"], 500)})


@pytest.mark.parametrize("seed", range(3))
def test_many_groups_match_fairlearn(seed):
    rng = np.random.default_rng(100 + seed)
    y_true, y_pred = _labels(rng, 3000, rng.random(), rng.random())
    _check(y_true, y_pred, {"region": rng.integers(0, 60, 3000)})


def test_highly_unbalanced_groups_and_a_single_member_group():
    # given: 99% in one group, a handful in others, one group with a single row
    rng = np.random.default_rng(7)
    groups = np.array(["big"] * 990 + ["small"] * 9 + ["one"], dtype=object)
    rng.shuffle(groups)
    y_true, y_pred = _labels(rng, 1000)
    # when
    result = _check(y_true, y_pred, {"g": groups})
    # then
    assert {g["name"]: g["count"] for g in result["by_column"]["g"]["groups"]} == {
        "big": 990,
        "one": 1,
        "small": 9,
    }


def test_zero_denominators_match_fairlearn():
    # given: a group with no positives, one with no negatives, one that predicts nothing positive
    y_true = np.array([0, 0, 0, 1, 1, 1, 0, 1, 0, 1, 1, 0])
    y_pred = np.array([0, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 1])
    groups = np.array(["neg"] * 3 + ["pos"] * 3 + ["none"] * 2 + ["mix"] * 4)
    # when
    result = _check(y_true, y_pred, {"g": groups})
    # then
    by_name = {g["name"]: g for g in result["by_column"]["g"]["groups"]}
    assert by_name["neg"]["recall"] == 0.0 and by_name["neg"]["false_negative_rate"] == 0.0
    assert by_name["pos"]["false_positive_rate"] == 0.0
    assert by_name["none"]["precision"] == 0.0


def test_all_zero_selection_rates_give_a_null_ratio_like_fairlearns_nan():
    rng = np.random.default_rng(3)
    y_true, _ = _labels(rng, 200)
    result = _check(y_true, np.zeros(200, dtype=int), {"g": rng.choice(["a", "b", "c"], 200)})
    assert result["by_column"]["g"]["disparities"]["demographic_parity_ratio"]["value"] is None


@pytest.mark.parametrize("seed", range(4))
def test_equalized_odds_quirks_match_fairlearn(seed):
    # given: groups without positives or negatives make TPR/FPR ratios 0/0 in some runs
    rng = np.random.default_rng(50 + seed)
    n = 40
    groups = rng.choice(["a", "b"], n)
    y_true = np.where(groups == "a", 1, rng.integers(0, 2, n)) if seed % 2 else (groups == "b").astype(int)
    y_pred = rng.integers(0, 2, n) if seed < 2 else np.zeros(n, dtype=int)
    _check(y_true, y_pred, {"g": groups})


def test_single_group_matches_fairlearn():
    rng = np.random.default_rng(11)
    y_true, y_pred = _labels(rng, 100)
    result = _check(y_true, y_pred, {"g": np.array(["only"] * 100)})
    assert result["by_column"]["g"]["disparities"]["demographic_parity_difference"]["value"] == 0.0


def test_string_and_missing_labels_and_their_intersection_match_fairlearn():
    # given: strings with None and NaN (one missing group), and a numeric column with NaN
    rng = np.random.default_rng(21)
    n = 2000
    race = rng.choice(np.array(["a", "b", "c", None, np.nan], dtype=object), n, p=[0.4, 0.3, 0.2, 0.05, 0.05])
    age = rng.choice(np.array([20.0, 40.0, 60.0, np.nan]), n)
    y_true, y_pred = _labels(rng, n)
    # when
    result = _check(y_true, y_pred, {"race": race, "age": age})
    # then
    race_labels = [g["label"] for g in result["by_column"]["race"]["groups"]]
    assert race_labels == ["a", "b", "c", None], "None and NaN are one group, listed last"
    assert result["by_column"]["race"]["groups"][-1]["name"] == bias.MISSING_NAME
    assert result["intersection"]["columns"] == ["race", "age"]


@pytest.mark.parametrize("seed", range(3))
def test_two_columns_and_their_intersection_match_fairlearn(seed):
    rng = np.random.default_rng(200 + seed)
    n = 4000
    sex = rng.choice(["F", "M", "X"], n, p=[0.49, 0.49, 0.02])
    band = rng.integers(0, 8, n)
    y_true, y_pred = _labels(rng, n, 0.3, 0.35)
    result = _check(y_true, y_pred, {"sex": sex, "band": band})
    occurring = {(s, int(b)) for s, b in zip(sex, band, strict=True)}
    assert {tuple(g["label"]) for g in result["intersection"]["groups"]} == occurring


def test_positive_label_mapping_matches_fairlearn_on_mapped_labels():
    rng = np.random.default_rng(5)
    n = 300
    y_true = rng.choice(["approve", "deny"], n)
    y_pred = rng.choice(["approve", "deny"], n)
    groups = rng.choice(["a", "b", "c"], n)
    result = bias.bias_summary(y_true, y_pred, {"g": groups}, positive_label="approve")
    assert result["positive_label"] == "approve"
    _assert_report_matches(
        result["by_column"]["g"],
        (y_true == "approve").astype(int),
        (y_pred == "approve").astype(int),
        {"g": groups},
    )


def test_pyarrow_columns_give_the_same_summary_as_numpy():
    import pyarrow as pa

    rng = np.random.default_rng(8)
    n = 1000
    sex = rng.choice(np.array(["F", "M", None], dtype=object), n)
    y_true, y_pred = _labels(rng, n)
    from_numpy = bias.bias_summary(y_true, y_pred, {"sex": sex})
    from_arrow = bias.bias_summary(
        pa.array(y_true), pa.array(y_pred), {"sex": pa.chunked_array([sex[:400], sex[400:]]).cast(pa.string())}
    )
    assert from_arrow == from_numpy


def test_confusion_counts_are_tn_fp_fn_tp_per_group():
    y_true = np.array([0, 0, 1, 1, 1, 0])
    y_pred = np.array([0, 1, 0, 1, 1, 0])
    groups = np.array([0, 0, 0, 2, 2, 2])
    counts = bias.confusion_counts(y_true, y_pred, groups, 3)
    assert counts.tolist() == [[1, 1, 1, 0], [0, 0, 0, 0], [1, 0, 0, 2]]


@pytest.mark.parametrize("n_chunks", [2, 7, 50])
def test_merged_chunk_counts_equal_one_pass(n_chunks):
    # given: chunks in which some groups do not occur at all
    rng = np.random.default_rng(n_chunks)
    n = 5000
    race = rng.choice(np.array(["a", "b", "c", "rare", None], dtype=object), n, p=[0.5, 0.3, 0.19, 0.005, 0.005])
    band = rng.integers(0, 5, n)
    y_true, y_pred = _labels(rng, n)
    sensitive = {"race": race, "band": band}
    bounds = np.linspace(0, n, n_chunks + 1).astype(int)
    # when: each chunk's partial goes through JSON, as it would through a chunk row
    partials = [
        bias.BiasPartial.from_dict(
            json.loads(
                json.dumps(
                    bias.bias_partial(y_true[a:b], y_pred[a:b], {k: v[a:b] for k, v in sensitive.items()}).to_dict()
                )
            )
        )
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    merged = bias.summary(bias.merge_partials(partials), reference={"race": "a", "band": 0})
    # then
    assert merged == bias.bias_summary(y_true, y_pred, sensitive, reference={"race": "a", "band": 0})
    assert merged["n_rows"] == n


def test_reference_group_differences_and_ratios():
    # given: selection rates a=0.5, b=0.25, c=1.0; reference a
    y_pred = np.array([1, 0, 1, 0] + [1, 0, 0, 0] + [1, 1])
    y_true = np.array([1, 0, 0, 1] + [1, 1, 0, 0] + [1, 0])
    groups = np.array(["a"] * 4 + ["b"] * 4 + ["c"] * 2)
    # when
    result = bias.bias_summary(y_true, y_pred, {"g": groups}, reference={"g": "a"})
    report = result["by_column"]["g"]
    # then
    by_name = {g["name"]: g for g in report["groups"]}
    assert by_name["b"]["versus_reference"]["selection_rate"] == {"difference": -0.25, "ratio": 0.5}
    assert by_name["c"]["versus_reference"]["selection_rate"] == {"difference": 0.5, "ratio": 2.0}
    ref = report["reference"]
    assert ref["label"] == "a"
    assert ref["demographic_parity_difference"] == {"value": 0.5, "metric": "selection_rate", "group": "c"}
    assert ref["demographic_parity_ratio"] == {"value": 0.5, "metric": "selection_rate", "group": "b"}
    # between groups, for comparison: max c (1.0) - min b (0.25)
    dp = report["disparities"]["demographic_parity_difference"]
    assert (dp["value"], dp["max"]["groups"], dp["min"]["groups"]) == (0.75, ["c"], ["b"])


def test_unknown_reference_group_is_a_clear_error():
    with pytest.raises(ValueError, match="reference group 'Z' does not occur in g"):
        bias.bias_summary([0, 1], [1, 1], {"g": ["a", "b"]}, reference={"g": "Z"})


def test_length_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="length mismatch: y_true has 3 rows, y_pred has 2"):
        bias.bias_summary([0, 1, 1], [0, 1], {"g": ["a", "b", "a"]})
    with pytest.raises(ValueError, match="sensitive column 'g' has 2"):
        bias.bias_summary([0, 1, 1], [0, 1, 1], {"g": ["a", "b"]})


def test_non_binary_labels_without_a_positive_label_are_a_clear_error():
    with pytest.raises(ValueError, match="labels are not binary.*name the positive label"):
        bias.bias_summary([0, 1, 2], [0, 1, 1], {"g": ["a", "b", "a"]})
    with pytest.raises(ValueError, match="labels are not binary"):
        bias.bias_summary(["yes", "no"], ["no", "no"], {"g": ["a", "b"]})


def test_no_rows_and_no_columns_are_clear_errors():
    with pytest.raises(ValueError, match="no rows"):
        bias.bias_summary([], [], {"g": []})
    with pytest.raises(ValueError, match="at least one sensitive column"):
        bias.bias_summary([0], [1], {})
