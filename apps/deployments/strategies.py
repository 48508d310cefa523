"""Rollout strategies: their default steps and health thresholds, and the checks on what a person asks for.

A step is ``{"weight": percent of live traffic for the new version, "pause": seconds to wait after the step
passed (0: go on at once; null: wait for a person to resume), "analysis": seconds of traffic the step is
judged on}``. Thresholds are ``max_error_rate`` (0..1), ``max_p99_ms``, ``max_restarts`` and
``min_requests`` (fewer requests than this over the window is too little to judge: the rollout pauses for
a person instead of promoting or rolling back).

- ``direct``: one step at 100 %, the stable version removed once the new one is ready and healthy.
- ``canary``: traffic steps (e.g. 10 %, 50 %), each analysed; then all traffic to the new version.
- ``blue_green``: the new version comes up beside the stable one with no traffic, waits for a person,
  then takes all the traffic at once (the stable one kept at 0 % while it is analysed), then the stable
  one is removed.
- ``shadow``: the new version gets a mirrored copy of the live traffic (its answers compared, never
  returned) while the stable version keeps serving; after the analysis it waits for a person; resuming
  promotes it. A shadow needs a stable version on the target.

Without a stable version on the target (a first deployment), every step runs the new version at 100 %.
"""

from __future__ import annotations

from typing import Any

from apps.core.errors import ValidationFailed

from .choices import Strategy

DEFAULT_STEPS: dict[str, list[dict]] = {
    Strategy.DIRECT: [{"weight": 100, "pause": 0, "analysis": 30}],
    Strategy.CANARY: [
        {"weight": 10, "pause": 0, "analysis": 60},
        {"weight": 50, "pause": 0, "analysis": 60},
    ],
    Strategy.BLUE_GREEN: [
        {"weight": 0, "pause": None, "analysis": 0},
        {"weight": 100, "pause": 0, "analysis": 60},
    ],
    Strategy.SHADOW: [{"weight": 0, "pause": None, "analysis": 300}],
}

DEFAULT_THRESHOLDS: dict[str, dict[str, Any]] = {
    Strategy.DIRECT: {"max_error_rate": 0.05, "max_p99_ms": 1000.0, "max_restarts": 2, "min_requests": 0},
    Strategy.CANARY: {"max_error_rate": 0.02, "max_p99_ms": 500.0, "max_restarts": 1, "min_requests": 20},
    Strategy.BLUE_GREEN: {"max_error_rate": 0.02, "max_p99_ms": 500.0, "max_restarts": 1, "min_requests": 20},
    Strategy.SHADOW: {"max_error_rate": 0.02, "max_p99_ms": 500.0, "max_restarts": 1, "min_requests": 50},
}
THRESHOLD_TYPES = {"max_error_rate": float, "max_p99_ms": float, "max_restarts": int, "min_requests": int}
MAX_STEPS = 20
MAX_SECONDS = 7 * 24 * 3600


def _fail(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", errors={field: [message]})


def checked_steps(strategy: str, steps: Any) -> list[dict]:
    """The steps to run: the strategy's defaults when ``steps`` is None, else ``steps`` checked (a 400 naming
    the fault)."""
    if steps is None:
        return [dict(s) for s in DEFAULT_STEPS[strategy]]
    if not isinstance(steps, list) or not steps or len(steps) > MAX_STEPS:
        raise _fail("steps", f"give a list of 1 to {MAX_STEPS} steps")
    out = []
    for n, step in enumerate(steps):
        where = f"steps[{n}]"
        if not isinstance(step, dict) or not set(step) <= {"weight", "pause", "analysis"} or "weight" not in step:
            raise _fail(where, "a step is {weight, pause, analysis} (weight required)")
        weight, pause, analysis = step["weight"], step.get("pause", 0), step.get("analysis", 0)
        for name, value, lowest, highest in (("weight", weight, 0, 100), ("analysis", analysis, 0, MAX_SECONDS)):
            if not isinstance(value, int) or isinstance(value, bool) or not lowest <= value <= highest:
                raise _fail(f"{where}.{name}", f"an integer from {lowest} to {highest}")
        if pause is not None and (
            not isinstance(pause, int) or isinstance(pause, bool) or not 0 <= pause <= MAX_SECONDS
        ):
            raise _fail(f"{where}.pause", f"seconds from 0 to {MAX_SECONDS}, or null to wait for a person")
        out.append({"weight": weight, "pause": pause, "analysis": analysis})
    if strategy == Strategy.DIRECT and [s["weight"] for s in out] != [100]:
        raise _fail("steps", "a direct deployment has one step at weight 100")
    if strategy == Strategy.SHADOW and any(s["weight"] != 0 for s in out):
        raise _fail("steps", "a shadow's steps carry no live traffic (weight 0): the new version gets a mirrored copy")
    weights = [s["weight"] for s in out]
    if weights != sorted(weights):
        raise _fail("steps", "weights never go down from one step to the next")
    return out


def checked_thresholds(strategy: str, thresholds: Any) -> dict:
    """The strategy's default thresholds with ``thresholds`` (a partial object) laid over, checked."""
    merged = dict(DEFAULT_THRESHOLDS[strategy])
    if thresholds is None:
        return merged
    if not isinstance(thresholds, dict):
        raise _fail("thresholds", "a JSON object")
    for key, value in thresholds.items():
        kind = THRESHOLD_TYPES.get(key)
        if kind is None:
            raise _fail(f"thresholds.{key}", f"unknown; valid keys: {', '.join(sorted(THRESHOLD_TYPES))}")
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise _fail(f"thresholds.{key}", "a number of at least 0")
        if kind is int and not float(value).is_integer():
            raise _fail(f"thresholds.{key}", "a whole number")
        if key == "max_error_rate" and value > 1:
            raise _fail(f"thresholds.{key}", "a fraction from 0 to 1")
        merged[key] = kind(value)
    return merged
