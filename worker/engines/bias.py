"""Bias report engine: fairlearn's group metrics from per-group confusion counts.

fairlearn is the definition and the test oracle; this module computes the same
numbers from one ``np.bincount`` per grouping instead of one Python call per
group and metric, so a million rows take milliseconds and chunks merge exactly.

The flow:

1. ``binarize`` maps labels to 0/1 (``positive_label`` or labels already in
   ``{0, 1}``, ``{-1, 1}`` or booleans).
2. ``bias_partial`` counts (tn, fp, fn, tp) per group for each sensitive column
   and for the intersection of all of them. A partial is keyed by group label,
   never by a chunk-local code, so ``merge_partials`` is a plain sum and a
   multi-chunk run equals the single pass exactly. ``BiasPartial.to_dict`` /
   ``from_dict`` make it JSON, for one row per chunk.
3. ``summary`` turns (merged) counts into the versioned ``assay.bias/v1`` dict.

Definitions (as fairlearn 0.15 / scikit-learn compute them by default, every
zero denominator giving 0.0, never NaN):

- selection_rate = (tp + fp) / n, accuracy = (tp + tn) / n
- precision = tp / (tp + fp)                  (0.0 when nothing is predicted positive)
- recall = true_positive_rate = tp / (tp + fn) (0.0 when the group has no positives)
- false_positive_rate = fp / (fp + tn)         (0.0 when the group has no negatives)
- false_negative_rate = fn / (fn + tp)         (0.0 when the group has no positives)

Only groups that occur are reported (as MetricFrame does). Missing labels
(None, NaN) form one group of their own, labelled ``None``; fairlearn refuses
missing values, so the tests compare it with a sentinel label there.

Disparities, fairlearn's ``method="between_groups"``:
demographic parity difference = max - min of selection_rate over groups, ratio
= min / max (NaN, reported as null, when max is 0); equalized odds difference =
the larger of the TPR and FPR differences, ratio = ``min(tpr_ratio,
fpr_ratio)`` with Python's ``min``, as fairlearn has it (a NaN TPR ratio wins,
a NaN FPR ratio loses).

Reference group (optional; NOT fairlearn's ``method="to_overall"``, which
compares with the whole population): every group is compared with the named
group. Per group: ``difference = metric(group) - metric(reference)`` (signed)
and ``ratio = metric(group) / metric(reference)`` (null if the reference's value
is 0). Aggregates over the other groups: the difference is the largest
``|difference|``, the ratio the smallest ``min(ratio, 1/ratio)`` (so always at
most 1, like fairlearn's ratios), each with the group that attains it; the
equalized-odds aggregates take the worse of TPR and FPR.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SCHEMA = "assay.bias/v1"
MISSING_NAME = "(missing)"
INTERSECTION_SEPARATOR = " × "
METRICS = (
    "selection_rate",
    "accuracy",
    "precision",
    "recall",
    "false_positive_rate",
    "false_negative_rate",
)
# Above this many possible intersection cells, codes are compacted with np.unique first.
_DENSE_INTERSECTION_LIMIT = 1 << 22

Label = Any  # a JSON scalar (None, bool, int, float, str); a tuple of them for intersections


# --- inputs ---------------------------------------------------------------------------


def _as_numpy(values: Any) -> np.ndarray:
    if hasattr(values, "to_numpy") and hasattr(values, "type"):  # pyarrow Array / ChunkedArray
        return values.to_numpy(zero_copy_only=False)
    return np.asarray(values)


def binarize(values: Any, positive_label: Label = None) -> np.ndarray:
    """0/1 as int8: ``values == positive_label``, or labels already binary when it is None.

    Without a positive label the values must all be in {0, 1}, {-1, 1} or booleans
    (1 / True is positive, as in fairlearn and scikit-learn); anything else is a ValueError.
    """
    arr = _as_numpy(values)
    if arr.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {arr.shape}")
    if positive_label is not None:
        return (arr == positive_label).astype(np.int8)
    if arr.dtype == np.bool_:
        return arr.astype(np.int8)
    if arr.dtype.kind in "iuf":
        is_one = arr == 1
        if bool((is_one | (arr == 0)).all()) or bool((is_one | (arr == -1)).all()):
            return is_one.astype(np.int8)
    elif arr.dtype == object:
        try:
            return binarize(arr.astype(np.float64))
        except (TypeError, ValueError):
            pass
    seen = sorted({repr(v) for v in arr[:10_000].tolist()})[:5]
    raise ValueError(
        "labels are not binary: without a positive_label they must be 0/1, -1/1 or booleans "
        f"(found values such as {', '.join(seen)}); name the positive label"
    )


def _json_label(value: Any) -> Label:
    """A group label as a JSON scalar; None for missing (None, NaN, NaT)."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (bool, int, float, str)):
        return value
    if value != value:  # NaT and other NaN-likes
        return None
    return str(value)


def _label_key(label: Label) -> tuple:
    """Sort order: numbers, then strings, then anything else; missing last."""
    if isinstance(label, tuple):
        return tuple(_label_key(part) for part in label)
    if label is None:
        return (3, 0)
    if isinstance(label, (bool, int, float)):
        return (0, label)
    if isinstance(label, str):
        return (1, label)
    return (2, str(label))


def factorize(values: Any) -> tuple[np.ndarray, list[Label]]:
    """Codes (int64, one per row) and the sorted distinct labels they index; None/NaN is one group."""
    import pyarrow as pa

    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        arr = np.asarray(values)
        if arr.ndim != 1:
            raise ValueError(f"a sensitive column must be one-dimensional, got shape {arr.shape}")
        try:
            values = pa.array(arr, from_pandas=True)  # NaN and None become null
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            return _factorize_python(arr)
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    encoded = values.dictionary_encode(null_encoding="encode")
    raw_labels = [_json_label(v) for v in encoded.dictionary.to_pylist()]
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    return _sorted_codes(codes, raw_labels)


def _factorize_python(arr: np.ndarray) -> tuple[np.ndarray, list[Label]]:
    """Fallback for mixed-type object columns pyarrow will not convert."""
    index: dict[Label, int] = {}
    codes = np.fromiter(
        (index.setdefault(_json_label(v), len(index)) for v in arr.tolist()),
        dtype=np.int64,
        count=len(arr),
    )
    return _sorted_codes(codes, list(index))


def _sorted_codes(codes: np.ndarray, raw_labels: list[Label]) -> tuple[np.ndarray, list[Label]]:
    # Distinct raw labels can coincide once made JSON-safe (e.g. NaN and a null); merge them.
    unique = sorted(set(raw_labels), key=_label_key)
    position = {label: i for i, label in enumerate(unique)}
    remap = np.array([position[label] for label in raw_labels], dtype=np.int64)
    return (remap[codes] if len(remap) else codes), unique


# --- counts ---------------------------------------------------------------------------


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """(n_groups, 4) int64 counts in the order (tn, fp, fn, tp); y_true and y_pred are 0/1."""
    cell = groups.astype(np.int64, copy=False) * 4
    cell += y_true.astype(np.int64, copy=False) * 2
    cell += y_pred
    return np.bincount(cell, minlength=4 * n_groups).reshape(n_groups, 4)


@dataclass
class GroupCounts:
    """Confusion counts of one grouping: a label per row of ``counts`` (tn, fp, fn, tp)."""

    labels: list[Label]
    counts: np.ndarray


@dataclass
class BiasPartial:
    """The mergeable result of one chunk (or of all of them): counts per group, keyed by label."""

    columns: list[str]
    by_column: dict[str, GroupCounts]
    intersection: GroupCounts | None = None
    meta: dict = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        first = self.by_column[self.columns[0]]
        return int(first.counts.sum())

    def to_dict(self) -> dict:
        """JSON-safe form (one row per chunk); ``from_dict`` reverses it."""

        def enc(gc: GroupCounts, tuples: bool) -> dict:
            labels = [list(lab) for lab in gc.labels] if tuples else list(gc.labels)
            return {"labels": labels, "counts": gc.counts.tolist()}

        return {
            "columns": list(self.columns),
            "by_column": {name: enc(self.by_column[name], False) for name in self.columns},
            "intersection": enc(self.intersection, True) if self.intersection else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> BiasPartial:
        def dec(raw: Mapping, tuples: bool) -> GroupCounts:
            labels = [tuple(lab) for lab in raw["labels"]] if tuples else list(raw["labels"])
            counts = np.asarray(raw["counts"], dtype=np.int64).reshape(len(labels), 4)
            return GroupCounts(labels, counts)

        columns = list(data["columns"])
        return cls(
            columns=columns,
            by_column={name: dec(data["by_column"][name], False) for name in columns},
            intersection=dec(data["intersection"], True) if data.get("intersection") else None,
        )


def _check_lengths(n: int, named: Mapping[str, Any]) -> None:
    for name, values in named.items():
        if len(values) != n:
            raise ValueError(f"length mismatch: y_true has {n} rows, {name} has {len(values)}")


def bias_partial(
    y_true: Any,
    y_pred: Any,
    sensitive: Mapping[str, Any],
    *,
    positive_label: Label = None,
) -> BiasPartial:
    """Per-group confusion counts for each sensitive column and their intersection.

    ``sensitive`` maps column names to label arrays (numpy, lists or pyarrow arrays of any
    type). The intersection is computed when there are two or more columns.
    """
    if not sensitive:
        raise ValueError("at least one sensitive column is needed")
    n = len(y_true)
    _check_lengths(n, {"y_pred": y_pred, **{f"sensitive column {k!r}": v for k, v in sensitive.items()}})
    if n == 0:
        raise ValueError("no rows: the bias report needs at least one row")
    yt = binarize(y_true, positive_label)
    yp = binarize(y_pred, positive_label)
    columns = list(sensitive)
    by_column: dict[str, GroupCounts] = {}
    coded: list[tuple[np.ndarray, list[Label]]] = []
    for name in columns:
        codes, labels = factorize(sensitive[name])
        coded.append((codes, labels))
        by_column[name] = GroupCounts(labels, confusion_counts(yt, yp, codes, len(labels)))
    intersection = _intersection(yt, yp, coded) if len(columns) > 1 else None
    return BiasPartial(columns=columns, by_column=by_column, intersection=intersection)


def _intersection(yt: np.ndarray, yp: np.ndarray, coded: Sequence[tuple[np.ndarray, list[Label]]]) -> GroupCounts:
    sizes = [len(labels) for _, labels in coded]
    combined = np.zeros(len(yt), dtype=np.int64)
    for codes, labels in coded:  # mixed radix, first column most significant: sorted order
        combined *= len(labels)
        combined += codes
    cells = math.prod(sizes)
    if cells <= _DENSE_INTERSECTION_LIMIT:
        counts = confusion_counts(yt, yp, combined, cells)
        present = np.flatnonzero(counts.sum(axis=1))
        counts = counts[present]
    else:
        present, compact = np.unique(combined, return_inverse=True)
        counts = confusion_counts(yt, yp, compact, len(present))
    digits = np.unravel_index(present, sizes)
    labels = [tuple(coded[c][1][digits[c][i]] for c in range(len(coded))) for i in range(len(present))]
    return GroupCounts(labels, counts)


def _merge_group_counts(parts: Sequence[GroupCounts]) -> GroupCounts:
    totals: dict[Label, np.ndarray] = {}
    for part in parts:
        for label, row in zip(part.labels, part.counts, strict=True):
            if label in totals:
                totals[label] = totals[label] + row
            else:
                totals[label] = row.astype(np.int64, copy=True)
    labels = sorted(totals, key=_label_key)
    counts = np.array([totals[lab] for lab in labels], dtype=np.int64).reshape(len(labels), 4)
    return GroupCounts(labels, counts)


def merge_partials(partials: Iterable[BiasPartial]) -> BiasPartial:
    """Sum chunk partials group by group; the result equals one pass over all the rows."""
    parts = list(partials)
    if not parts:
        raise ValueError("nothing to merge")
    columns = parts[0].columns
    for part in parts[1:]:
        if part.columns != columns:
            raise ValueError(f"partials disagree on the sensitive columns: {columns} vs {part.columns}")
    by_column = {name: _merge_group_counts([p.by_column[name] for p in parts]) for name in columns}
    intersection = None
    if len(columns) > 1:
        intersection = _merge_group_counts([p.intersection for p in parts])
    return BiasPartial(columns=list(columns), by_column=by_column, intersection=intersection)


# --- metrics --------------------------------------------------------------------------


def _rate(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0.0 where den is 0 (scikit-learn's zero_division and fairlearn's rates)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den != 0)


def group_metrics(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Metric arrays (one value per row of ``counts``), named as in the summary."""
    counts = np.asarray(counts, dtype=np.int64).reshape(-1, 4)
    tn, fp, fn, tp = counts.T
    n = tn + fp + fn + tp
    return {
        "count": n,
        "selection_rate": _rate(tp + fp, n),
        "accuracy": _rate(tp + tn, n),
        "precision": _rate(tp, tp + fp),
        "recall": _rate(tp, tp + fn),
        "false_positive_rate": _rate(fp, fp + tn),
        "false_negative_rate": _rate(fn, fn + tp),
    }


def _num(value: float) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def _extremes(values: np.ndarray, labels: list[Label]) -> tuple[dict, dict]:
    hi, lo = float(values.max()), float(values.min())
    return (
        {"value": hi, "groups": [labels[i] for i in np.flatnonzero(values == hi)]},
        {"value": lo, "groups": [labels[i] for i in np.flatnonzero(values == lo)]},
    )


def _between(values: np.ndarray, labels: list[Label], metric: str) -> tuple[dict, dict]:
    """fairlearn between_groups difference (max - min) and ratio (min / max) of one metric."""
    hi, lo = _extremes(values, labels)
    diff = hi["value"] - lo["value"]
    ratio = lo["value"] / hi["value"] if hi["value"] != 0 else math.nan
    return (
        {"value": diff, "metric": metric, "max": hi, "min": lo},
        {"value": _num(ratio), "metric": metric, "max": hi, "min": lo},
    )


def disparities(metrics: Mapping[str, np.ndarray], labels: list[Label]) -> dict:
    """The four fairlearn disparity measures, with the groups at each extreme."""
    dp_diff, dp_ratio = _between(metrics["selection_rate"], labels, "selection_rate")
    tpr_diff, tpr_ratio = _between(metrics["recall"], labels, "true_positive_rate")
    fpr_diff, fpr_ratio = _between(metrics["false_positive_rate"], labels, "false_positive_rate")
    # fairlearn: max(eo.difference()) and min(eo.ratio()) over the Series [tpr, fpr] with
    # Python's max/min, which keep the first item unless the second compares greater/less.
    eo_diff = fpr_diff if fpr_diff["value"] > tpr_diff["value"] else tpr_diff
    tpr_r = math.nan if tpr_ratio["value"] is None else tpr_ratio["value"]
    fpr_r = math.nan if fpr_ratio["value"] is None else fpr_ratio["value"]
    eo_ratio = fpr_ratio if fpr_r < tpr_r else tpr_ratio
    return {
        "demographic_parity_difference": dp_diff,
        "demographic_parity_ratio": dp_ratio,
        "equalized_odds_difference": eo_diff,
        "equalized_odds_ratio": eo_ratio,
        "true_positive_rate_difference": tpr_diff,
        "true_positive_rate_ratio": tpr_ratio,
        "false_positive_rate_difference": fpr_diff,
        "false_positive_rate_ratio": fpr_ratio,
    }


_REFERENCE_METRICS = {
    "selection_rate": "selection_rate",
    "true_positive_rate": "recall",
    "false_positive_rate": "false_positive_rate",
}


def _versus_reference(metrics: Mapping[str, np.ndarray], labels: list[Label], ref: int) -> tuple[list, dict]:
    """Per-group signed differences/ratios against group ``ref`` and their aggregates."""
    per_group: list[dict] = [{} for _ in labels]
    worst: dict[str, dict] = {}
    for public, key in _REFERENCE_METRICS.items():
        values = metrics[key]
        ref_value = float(values[ref])
        best_diff = {"value": 0.0, "metric": public, "group": None}
        best_ratio = {"value": None, "metric": public, "group": None}
        for i, label in enumerate(labels):
            diff = float(values[i]) - ref_value
            ratio = float(values[i]) / ref_value if ref_value != 0 else math.nan
            per_group[i][public] = {"difference": diff, "ratio": _num(ratio)}
            if i == ref:
                continue
            if best_diff["group"] is None or abs(diff) > abs(best_diff["value"]):
                best_diff = {"value": diff, "metric": public, "group": label}
            if not math.isnan(ratio):
                folded = min(ratio, 1 / ratio) if ratio != 0 else 0.0
                if best_ratio["value"] is None or folded < best_ratio["value"]:
                    best_ratio = {"value": folded, "metric": public, "group": label}
        worst[public] = {"difference": best_diff, "ratio": best_ratio}

    def worse_diff(a: dict, b: dict) -> dict:
        return b if abs(b["value"]) > abs(a["value"]) else a

    def worse_ratio(a: dict, b: dict) -> dict:
        if a["value"] is None:
            return b
        if b["value"] is None:
            return a
        return b if b["value"] < a["value"] else a

    tpr, fpr = worst["true_positive_rate"], worst["false_positive_rate"]
    aggregates = {
        "demographic_parity_difference": worst["selection_rate"]["difference"],
        "demographic_parity_ratio": worst["selection_rate"]["ratio"],
        "equalized_odds_difference": worse_diff(tpr["difference"], fpr["difference"]),
        "equalized_odds_ratio": worse_ratio(tpr["ratio"], fpr["ratio"]),
    }
    return per_group, aggregates


# --- summary --------------------------------------------------------------------------


def _group_name(label: Label) -> str:
    if isinstance(label, tuple):
        return INTERSECTION_SEPARATOR.join(_group_name(part) for part in label)
    return MISSING_NAME if label is None else str(label)


def _json_group_label(label: Label) -> Any:
    return list(label) if isinstance(label, tuple) else label


def _listify(obj: Any) -> Any:
    """Tuples (intersection labels) to lists, all the way down, for a JSON-equal dict."""
    if isinstance(obj, dict):
        return {k: _listify(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_listify(v) for v in obj]
    return obj


def _feature_report(gc: GroupCounts, columns: list[str], reference: Label | None, has_ref: bool) -> dict:
    metrics = group_metrics(gc.counts)
    groups = []
    for i, label in enumerate(gc.labels):
        tn, fp, fn, tp = (int(v) for v in gc.counts[i])
        row = {
            "label": _json_group_label(label),
            "name": _group_name(label),
            "count": int(metrics["count"][i]),
            "tn": tn,
            "fp": fp,
            "fn": fn,
            "tp": tp,
        }
        row.update({m: float(metrics[m][i]) for m in METRICS})
        row["true_positive_rate"] = row["recall"]
        groups.append(row)
    report = {
        "columns": list(columns),
        "n_groups": len(groups),
        "groups": groups,
        "disparities": disparities(metrics, gc.labels),
        "reference": None,
    }
    if has_ref:
        if reference not in gc.labels:
            present = ", ".join(_group_name(lab) for lab in gc.labels[:20])
            raise ValueError(
                f"reference group {_group_name(reference)!r} does not occur in {' × '.join(columns)} "
                f"(groups: {present})"
            )
        ref = gc.labels.index(reference)
        per_group, aggregates = _versus_reference(metrics, gc.labels, ref)
        for row, versus in zip(groups, per_group, strict=True):
            row["versus_reference"] = versus
        report["reference"] = {"label": _json_group_label(reference), "name": _group_name(reference), **aggregates}
    return _listify(report)


def summary(
    partial: BiasPartial,
    *,
    positive_label: Label = None,
    reference: Mapping[str, Label] | None = None,
) -> dict:
    """The ``assay.bias/v1`` summary of (merged) counts; see the module docstring for definitions.

    ``reference`` optionally names a reference group per sensitive column; the intersection
    gets a reference when every column has one (the tuple of them).
    """
    reference = dict(reference or {})
    unknown = set(reference) - set(partial.columns)
    if unknown:
        raise ValueError(f"reference names unknown sensitive columns: {sorted(unknown)}")
    total = partial.by_column[partial.columns[0]].counts.sum(axis=0)
    overall = group_metrics(total.reshape(1, 4))
    result = {
        "schema": SCHEMA,
        "n_rows": partial.n_rows,
        "positive_label": _json_label(positive_label) if positive_label is not None else 1,
        "sensitive_columns": list(partial.columns),
        "overall": {
            "count": int(overall["count"][0]),
            **{m: float(overall[m][0]) for m in METRICS},
        },
        "by_column": {
            name: _feature_report(partial.by_column[name], [name], reference.get(name), name in reference)
            for name in partial.columns
        },
        "intersection": None,
    }
    if partial.intersection is not None:
        has_ref = all(name in reference for name in partial.columns)
        ref_label = tuple(reference[name] for name in partial.columns) if has_ref else None
        result["intersection"] = _feature_report(partial.intersection, partial.columns, ref_label, has_ref)
    return result


def bias_summary(
    y_true: Any,
    y_pred: Any,
    sensitive: Mapping[str, Any],
    *,
    positive_label: Label = None,
    reference: Mapping[str, Label] | None = None,
) -> dict:
    """One pass: ``summary(bias_partial(...))``."""
    partial = bias_partial(y_true, y_pred, sensitive, positive_label=positive_label)
    return summary(partial, positive_label=positive_label, reference=reference)
