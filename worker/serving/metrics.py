"""Counters and latency histograms in the Prometheus text format, written by the serving processes and read back
by the local driver.

Pure Python (no client library, no numpy) so the router starts quickly and the driver can parse what the servers
expose. A histogram keeps cumulative counts per bucket, as Prometheus does; ``quantile`` estimates a percentile
from those buckets the way PromQL's ``histogram_quantile`` does (linear within the bucket).
"""

from __future__ import annotations

import bisect
import math
import re

# Seconds. Fine below 10 ms, where a served tabular model answers; coarse above.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class Histogram:
    """A latency histogram with fixed upper bounds (seconds); ``counts[i]`` counts observations in bucket ``i``."""

    __slots__ = ("bounds", "counts", "total", "count")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.total += seconds
        self.count += 1

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, observations at or below it), ending with (+Inf, count)."""
        out, running = [], 0
        for bound, n in zip((*self.bounds, math.inf), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out

    def quantile_ms(self, q: float) -> float | None:
        return quantile_ms(self.cumulative(), q)

    def lines(self, name: str, labels: str = "") -> list[str]:
        sep = "," if labels else ""
        out = [
            f'{name}_bucket{{{labels}{sep}le="{"+Inf" if math.isinf(b) else repr(b)}"}} {n}'
            for b, n in self.cumulative()
        ]
        braces = f"{{{labels}}}" if labels else ""
        out.append(f"{name}_sum{braces} {self.total!r}")
        out.append(f"{name}_count{braces} {self.count}")
        return out


def quantile_ms(cumulative: list[tuple[float, int]], q: float) -> float | None:
    """The ``q`` quantile in milliseconds from cumulative bucket counts; None without observations.

    Linear interpolation inside the bucket that holds the rank (as ``histogram_quantile``); a rank in the
    +Inf bucket answers the highest finite bound.
    """
    if not cumulative or cumulative[-1][1] == 0:
        return None
    rank = q * cumulative[-1][1]
    lower_bound, lower_count = 0.0, 0
    for bound, count in cumulative:
        if count >= rank:
            if math.isinf(bound):
                return round(lower_bound * 1000, 3)
            inside = count - lower_count
            fraction = (rank - lower_count) / inside if inside else 1.0
            return round((lower_bound + (bound - lower_bound) * fraction) * 1000, 3)
        lower_bound, lower_count = bound, count
    return round(lower_bound * 1000, 3)


def label_value(value: object) -> str:
    """A label value escaped as the text format wants it."""
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def labels(**pairs: object) -> str:
    return ",".join(f'{k}="{label_value(v)}"' for k, v in pairs.items())


# --- reading the text format back ------------------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) for every sample line of a Prometheus text exposition; comments are skipped."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if not match:
            continue
        name, raw_labels, raw_value = match.groups()
        found = {
            k: v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
            for k, v in _LABEL.findall(raw_labels or "")
        }
        try:
            value = float(raw_value)
        except ValueError:
            continue
        samples.append((name, found, value))
    return samples


def value(samples: list[tuple[str, dict[str, str], float]], name: str, **match: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``match`` (0 when there are none)."""
    return sum(v for n, lab, v in samples if n == name and all(lab.get(k) == w for k, w in match.items()))


def buckets(samples: list[tuple[str, dict[str, str], float]], name: str) -> list[tuple[float, int]]:
    """The cumulative buckets of histogram ``name`` (``name_bucket`` samples), sorted by bound."""
    found = [
        (math.inf if lab["le"] == "+Inf" else float(lab["le"]), int(v))
        for n, lab, v in samples
        if n == f"{name}_bucket" and "le" in lab
    ]
    return sorted(found)
