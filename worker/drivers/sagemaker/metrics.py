"""A variant's health figures from CloudWatch, as SageMaker publishes them.

SageMaker publishes, per endpoint and variant (dimensions ``EndpointName`` and ``VariantName``, namespace
``AWS/SageMaker``), one-minute data that arrives a minute or two late:

- ``requests``: ``Invocations`` (Sum), counted from the variant's model's creation, so that the
  counters grow as the rollout engine expects (it judges their deltas over a step's analysis window);
- ``errors``: ``Invocation4XXErrors`` + ``Invocation5XXErrors`` (Sum) over the same span: a new version
  that refuses the requests the stable one answers has failed its callers, whatever the status code;
- ``latency_p99_ms``: ``ModelLatency``'s p99 (microseconds) over the last ``LATENCY_WINDOW``, in ms.

Because of CloudWatch's delay, a canary step's analysis window on SageMaker should last a few minutes
(docs/targets-sagemaker.md). The counters are read in one ``GetMetricData`` call per observation; the
latency with ``GetMetricStatistics`` (its ``ExtendedStatistics``), one call per variant. A figure
CloudWatch cannot give (no permission, a throttled call) is reported as missing in the member's message,
and the step is then judged on what remains: it never fails the observation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from apps.deployments.plans import DriverError

from .aws import Aws

NAMESPACE = "AWS/SageMaker"
COUNTERS = {"requests": ("Invocations",), "errors": ("Invocation4XXErrors", "Invocation5XXErrors")}
LATENCY_WINDOW = timedelta(minutes=5)
# CloudWatch keeps one-minute data for 15 days; older sums would need hourly periods.
LOOKBACK = timedelta(days=14)


@dataclass(frozen=True)
class Figures:
    requests: int = 0
    errors: int = 0
    latency_p99_ms: float | None = None
    missing: tuple[str, ...] = ()


def _dimensions(endpoint: str, variant: str) -> list[dict[str, str]]:
    return [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]


def counter_queries(endpoint: str, variants: dict[str, datetime], now: datetime) -> tuple[list[dict], datetime]:
    """The ``GetMetricData`` queries for every variant's counters (``variants``: name -> its model's creation),
    and the start they share: the earliest creation within ``LOOKBACK``. Each query's period spans the whole
    range, so CloudWatch answers with one sum per query (two at a period's edge)."""
    start = max(min(variants.values()), now - LOOKBACK).replace(second=0, microsecond=0)
    period = max(60, math.ceil((now - start).total_seconds() / 60 + 1) * 60)
    queries = []
    for index, variant in enumerate(sorted(variants)):
        for figure, metrics in COUNTERS.items():
            for number, metric in enumerate(metrics):
                queries.append(
                    {
                        "Id": f"{figure}_{index}_{number}",
                        "Label": f"{variant} {metric}",
                        "MetricStat": {
                            "Metric": {
                                "Namespace": NAMESPACE,
                                "MetricName": metric,
                                "Dimensions": _dimensions(endpoint, variant),
                            },
                            "Period": period,
                            "Stat": "Sum",
                        },
                        "ReturnData": True,
                    }
                )
    return queries, start


def read_figures(aws: Aws, endpoint: str, variants: dict[str, datetime], now: datetime) -> dict[str, Figures]:
    """{variant name: its figures}; ``variants`` maps each variant to its model's creation time."""
    if not variants:
        return {}
    cloudwatch = aws.cloudwatch
    queries, start = counter_queries(endpoint, variants, now)
    names = sorted(variants)
    sums: dict[str, dict[str, float]] = {name: {"requests": 0.0, "errors": 0.0} for name in names}
    missing: list[str] = []
    try:
        results = _all_results(aws, cloudwatch, queries, start, now + timedelta(minutes=1))
    except DriverError as exc:
        results = []
        missing.append(f"request counters unavailable ({exc})")
    for result in results:
        figure, index, _ = result["Id"].split("_")
        sums[names[int(index)]][figure] += sum(float(v) for v in result.get("Values", []))
    out = {}
    for name in names:
        p99, why = _latency_p99(aws, cloudwatch, endpoint, name, now)
        out[name] = Figures(
            requests=int(sums[name]["requests"]),
            errors=int(sums[name]["errors"]),
            latency_p99_ms=p99,
            missing=tuple(missing + ([why] if why else [])),
        )
    return out


def _all_results(aws: Aws, cloudwatch, queries: list[dict], start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Every result of the queries, 500 queries a call (CloudWatch's limit), following ``NextToken``."""
    results: list[dict[str, Any]] = []
    for first in range(0, len(queries), 500):
        params: dict[str, Any] = {"MetricDataQueries": queries[first : first + 500], "StartTime": start, "EndTime": end}
        while True:
            answer = aws.call(cloudwatch, "get_metric_data", **params)
            results += answer.get("MetricDataResults", [])
            if not answer.get("NextToken"):
                break
            params["NextToken"] = answer["NextToken"]
    return results


def _latency_p99(aws: Aws, cloudwatch, endpoint: str, variant: str, now: datetime) -> tuple[float | None, str]:
    """ModelLatency's p99 over the last window, in ms (None when CloudWatch has no data), and why it is missing."""
    try:
        answer = aws.call(
            cloudwatch,
            "get_metric_statistics",
            Namespace=NAMESPACE,
            MetricName="ModelLatency",
            Dimensions=_dimensions(endpoint, variant),
            StartTime=now - LATENCY_WINDOW,
            EndTime=now + timedelta(minutes=1),
            Period=int(LATENCY_WINDOW.total_seconds()) + 60,
            ExtendedStatistics=["p99"],
        )
    except DriverError as exc:
        return None, f"latency unavailable ({exc})"
    values = [
        float(point["ExtendedStatistics"]["p99"])
        for point in answer.get("Datapoints", [])
        if "p99" in (point.get("ExtendedStatistics") or {})
    ]
    return (round(max(values) / 1000.0, 3), "") if values else (None, "")
