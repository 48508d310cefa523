"""Performance and fairness on live traffic from confusion counts, which windows store and add up.

Once labels arrive, a window keeps, for the whole traffic and for each group of each sensitive column, the
counts of true and false positives and negatives of a binary model. From them:

- ``metrics``: accuracy, precision, recall (true positive rate), false positive rate, F1 and selection rate,
  with scikit-learn's definitions (a ratio over nothing is 0, as its ``zero_division=0``);
- ``fairness``: the demographic parity difference (the largest gap in selection rate between groups) and the
  equalized odds difference (the larger of the largest gaps in true and in false positive rate), fairlearn's
  definitions, which the release-time bias report uses too: a live disparity reads like a released one.

Counts add up (``merge``), so a window is the sum of its batches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

KEYS = ("tp", "fp", "tn", "fn")


def _cell(truth, predicted) -> str:
    if int(predicted) == 1:
        return "tp" if int(truth) == 1 else "fp"
    return "fn" if int(truth) == 1 else "tn"


def confusion_counts(y_true: Sequence, y_pred: Sequence, sensitive: Mapping[str, Sequence] | None = None) -> dict:
    """``{"all": {tp, fp, tn, fn}, "groups": {column: {value: {tp, fp, tn, fn}}}}`` of a labelled batch."""
    if len(y_true) != len(y_pred):
        raise ValueError("labels and predictions must pair up one to one")
    out = {"all": dict.fromkeys(KEYS, 0), "groups": {}}
    cells = [_cell(t, p) for t, p in zip(y_true, y_pred, strict=True)]
    for cell in cells:
        out["all"][cell] += 1
    for column, values in (sensitive or {}).items():
        if len(values) != len(cells):
            raise ValueError(f"sensitive column {column} must have one value per record")
        groups = out["groups"].setdefault(column, {})
        for value, cell in zip(values, cells, strict=True):
            groups.setdefault(str(value), dict.fromkeys(KEYS, 0))[cell] += 1
    return out


def merge(a: dict, b: dict) -> dict:
    def add(x: dict, y: dict) -> dict:
        return {k: x.get(k, 0) + y.get(k, 0) for k in KEYS}

    groups: dict = {}
    for source in (a["groups"], b["groups"]):
        for column, values in source.items():
            for value, counts in values.items():
                target = groups.setdefault(column, {})
                target[value] = add(target.get(value, {}), counts)
    return {"all": add(a["all"], b["all"]), "groups": groups}


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def metrics(c: Mapping[str, int]) -> dict:
    tp, fp, tn, fn = (c[k] for k in KEYS)
    total = tp + fp + tn + fn
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return {
        "count": total,
        "accuracy": _ratio(tp + tn, total),
        "precision": precision,
        "recall": recall,
        "false_positive_rate": _ratio(fp, fp + tn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "selection_rate": _ratio(tp + fp, total),
    }


def fairness(groups: Mapping[str, Mapping[str, int]]) -> dict:
    """The gaps between the groups of one sensitive column (fairlearn's ``between_groups`` differences)."""
    per = {value: metrics(counts) for value, counts in groups.items()}
    if len(per) < 2:
        return {"demographic_parity_difference": 0.0, "equalized_odds_difference": 0.0, "groups": per}

    def gap(key: str) -> float:
        values = [m[key] for m in per.values()]
        return max(values) - min(values)

    return {
        "demographic_parity_difference": gap("selection_rate"),
        "equalized_odds_difference": max(gap("recall"), gap("false_positive_rate")),
        "groups": per,
    }
