"""Monitoring aggregates: a reference profile, per-window counts that merge, and the drift between them.

Monitoring stores windows of counts, not rows (issue 15), so its data grows with the number of windows:

- ``profile_reference`` reads the reference (a version's evaluation or training dataset) once: for each
  numeric feature its quantile bins (``drift.numeric_edges``), each bin's representative value and counts,
  and its range; for each categorical feature its categories and counts; the prediction column likewise.
- ``aggregate`` turns a batch of records into a ``WindowAggregate`` over the same bins, with the data
  quality counts: missing values, values outside the reference's range, categories the reference never had,
  and the schema's findings (a missing column, a column that is not numeric where the reference was).
- ``WindowAggregate.merge``: two batches of one window add up to the aggregate of both (so a consumer can
  store each batch's aggregate and commit its offsets after, and a window is the sum of its batches).
- ``window_drift``: every feature's drift figures (``worker.engines.drift``) for a window against the reference.

Columns are given as a mapping of name to a sequence of values (what a CSV, JSON Lines or Parquet reader
gives); the schema is the dataset's (``name``, ``type``, ``role``), whose ``feature`` and ``prediction``
columns are profiled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from . import drift

NUMERIC_TYPES = {"int", "integer", "long", "float", "double", "number", "numeric"}
PROFILED_ROLES = {"feature", "prediction"}


@dataclass
class Profile:
    """The reference: per column, its bins (numeric) or categories, and the reference's counts over them."""

    numeric: dict[str, dict] = field(default_factory=dict)  # name -> edges, points, counts, low, high
    categorical: dict[str, dict] = field(default_factory=dict)  # name -> categories, counts

    def as_dict(self) -> dict:
        return {"numeric": self.numeric, "categorical": self.categorical}


@dataclass
class WindowAggregate:
    """One window's counts over the profile's bins, and its data quality counts."""

    rows: int = 0
    counts: dict[str, list[int]] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)
    out_of_range: dict[str, int] = field(default_factory=dict)
    unseen: dict[str, int] = field(default_factory=dict)
    schema_findings: list[str] = field(default_factory=list)

    def merge(self, other: WindowAggregate) -> WindowAggregate:
        def add(a: dict, b: dict) -> dict:
            return {k: a.get(k, 0) + b.get(k, 0) for k in a.keys() | b.keys()}

        counts = {
            k: [x + y for x, y in zip(self.counts.get(k, [0] * len(v)), v, strict=True)]
            for k, v in other.counts.items()
        }
        counts.update({k: v for k, v in self.counts.items() if k not in other.counts})
        return WindowAggregate(
            rows=self.rows + other.rows,
            counts=counts,
            missing=add(self.missing, other.missing),
            out_of_range=add(self.out_of_range, other.out_of_range),
            unseen=add(self.unseen, other.unseen),
            schema_findings=sorted(set(self.schema_findings) | set(other.schema_findings)),
        )


def _numeric(values: Sequence) -> tuple[np.ndarray, int]:
    """The finite numbers among ``values`` and how many were missing (None, empty, NaN)."""
    out, missing = [], 0
    for v in values:
        if v is None or v == "":
            missing += 1
            continue
        try:
            number = float(v)
        except (TypeError, ValueError):
            missing += 1
            continue
        if np.isfinite(number):
            out.append(number)
        else:
            missing += 1
    return np.asarray(out, dtype=float), missing


def profile_reference(columns: Mapping[str, Sequence], schema: Sequence[Mapping], bins: int = 10) -> Profile:
    """The reference profile of the schema's feature and prediction columns."""
    profile = Profile()
    for column in schema:
        name, role, kind = column["name"], column.get("role", "feature"), str(column.get("type", "")).lower()
        if role not in PROFILED_ROLES:
            continue
        if name not in columns:
            raise ValueError(f"the reference has no column {name!r}")
        if kind in NUMERIC_TYPES:
            values, _ = _numeric(columns[name])
            edges = drift.numeric_edges(values, bins)
            profile.numeric[name] = {
                "edges": [float(e) for e in edges],
                "points": [float(p) for p in drift.representatives(edges, values)],
                "counts": [int(c) for c in drift.numeric_counts(values, edges)],
                "low": float(values.min()),
                "high": float(values.max()),
            }
        else:
            categories = sorted({str(v) for v in columns[name] if v is not None and v != ""})
            counts = drift.category_counts((str(v) for v in columns[name] if v is not None and v != ""), categories)
            profile.categorical[name] = {"categories": categories, "counts": [int(c) for c in counts]}
    return profile


def aggregate(columns: Mapping[str, Sequence], profile: Profile) -> WindowAggregate:
    """A batch of records as counts over the profile's bins, with its data quality counts."""
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise ValueError("the columns of a batch must have the same length")
    result = WindowAggregate(rows=lengths.pop() if lengths else 0)
    for name, spec in profile.numeric.items():
        if name not in columns:
            result.schema_findings.append(f"column {name} is missing")
            continue
        values, missing = _numeric(columns[name])
        not_numbers = sum(1 for v in columns[name] if isinstance(v, str) and v != "" and not _is_number(v))
        if not_numbers:
            result.schema_findings.append(f"column {name} holds text where the reference holds numbers")
        edges = np.asarray(spec["edges"])
        result.counts[name] = [int(c) for c in drift.numeric_counts(values, edges)]
        result.missing[name] = missing
        result.out_of_range[name] = int(np.sum((values < spec["low"]) | (values > spec["high"])))
    for name, spec in profile.categorical.items():
        if name not in columns:
            result.schema_findings.append(f"column {name} is missing")
            continue
        present = [str(v) for v in columns[name] if v is not None and v != ""]
        counts = drift.category_counts(present, spec["categories"])
        result.counts[name] = [int(c) for c in counts]
        result.missing[name] = result.rows - len(present)
        result.unseen[name] = int(counts[-1])
    return result


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def window_drift(profile: Profile, window: WindowAggregate) -> dict[str, dict]:
    """Every profiled column's drift figures for the window (a column the window lacks is left out)."""
    out: dict[str, dict] = {}
    for name, spec in profile.numeric.items():
        counts = window.counts.get(name)
        if counts and sum(counts) > 0:
            out[name] = drift.numeric_drift(np.asarray(spec["counts"]), np.asarray(counts), np.asarray(spec["points"]))
    for name, spec in profile.categorical.items():
        counts = window.counts.get(name)
        if counts and sum(counts) > 0:
            out[name] = drift.categorical_drift(np.asarray(spec["counts"]), np.asarray(counts))
    return out
