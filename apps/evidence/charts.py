"""Chart geometry for the evidence pages: SVG coordinates computed here, drawn by the templates.

No JavaScript chart library and no CDN: each chart is plain inline SVG, so the pages work
offline, print well and can be read by assistive tools (every chart has a table beside it).
"""

from __future__ import annotations

import math
from typing import Any

WIDTH = 640
ROW = 22
LABEL = 180


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def importance_bars(items: list[dict], limit: int = 20) -> dict:
    """Horizontal bars of mean |SHAP| per feature, largest first."""
    items = [i for i in items if _finite(i.get("mean_abs_shap")) is not None][:limit]
    top = max((i["mean_abs_shap"] for i in items), default=0.0) or 1.0
    span = WIDTH - LABEL - 70
    bars = [
        {
            "y": k * ROW,
            "label": str(i.get("feature")),
            "value": i["mean_abs_shap"],
            "width": max(1.0, round(span * i["mean_abs_shap"] / top, 1)),
            "text_x": LABEL + max(1.0, round(span * i["mean_abs_shap"] / top, 1)) + 6,
        }
        for k, i in enumerate(items)
    ]
    return {"bars": bars, "height": len(bars) * ROW + 4, "width": WIDTH, "label_width": LABEL}


def _color(t: float | None) -> str:
    """Blue (low feature value) to red (high), grey when the value is missing."""
    if t is None:
        return "#9aa3ad"
    t = min(1.0, max(0.0, t))
    r, g, b = int(30 + 200 * t), int(100 - 40 * t), int(220 - 180 * t)
    return f"rgb({r},{g},{b})"


def beeswarm(beeswarm: dict, limit: int = 12) -> dict:
    """One row per feature: each explained row is a dot at its SHAP value, coloured by the feature's value."""
    features = list(beeswarm.get("features") or [])[:limit]
    points = beeswarm.get("points") or {}
    values = [_finite(p[1]) for f in features for p in points.get(f, []) if isinstance(p, list | tuple) and len(p) == 2]
    values = [v for v in values if v is not None]
    bound = max((abs(v) for v in values), default=0.0) or 1.0
    span = (WIDTH - LABEL - 20) / 2
    zero = LABEL + span
    rows, height = [], 30
    for k, feature in enumerate(features):
        y = k * 30 + 15
        dots = []
        for j, point in enumerate(points.get(feature, [])):
            if not isinstance(point, list | tuple) or len(point) != 2:
                continue
            shap_value = _finite(point[1])
            if shap_value is None:
                continue
            jitter = ((j * 7919) % 17 - 8) * 0.9  # deterministic spread so overlapping dots stay visible
            dots.append(
                {"cx": round(zero + span * shap_value / bound, 1), "cy": round(y + jitter, 1), "fill": _color(point[0])}
            )
        rows.append({"label": feature, "y": y, "dots": dots})
        height = y + 15
    return {"rows": rows, "height": height + 24, "width": WIDTH, "zero": zero, "bound": bound, "label_width": LABEL}


def waterfall(local: dict, limit: int = 10) -> dict:
    """A waterfall from the base value to the prediction: each feature's SHAP value as a step."""
    base = _finite(local.get("base_value")) or 0.0
    contributions = [c for c in local.get("contributions") or [] if _finite(c.get("shap")) is not None]
    shown, rest = contributions[:limit], contributions[limit:]
    steps = [(f"{c.get('feature')} = {_short(c.get('value'))}", float(c["shap"])) for c in shown]
    if rest:
        steps.append((f"{len(rest)} other features", sum(float(c["shap"]) for c in rest)))
    running, ends = base, [base]
    for _, delta in steps:
        running += delta
        ends.append(running)
    low, high = min(ends), max(ends)
    scale = (WIDTH - LABEL - 80) / ((high - low) or 1.0)
    bars, position = [], base
    for k, (label, delta) in enumerate(steps):
        start, end = position, position + delta
        x0 = LABEL + (min(start, end) - low) * scale
        bars.append(
            {
                "y": k * ROW,
                "x": round(x0, 1),
                "width": max(1.0, round(abs(delta) * scale, 1)),
                "label": label,
                "delta": delta,
                "positive": delta >= 0,
                "text_x": round(x0 + max(1.0, abs(delta) * scale) + 4, 1),
            }
        )
        position = end
    return {
        "bars": bars,
        "height": len(bars) * ROW + 6,
        "width": WIDTH,
        "base": base,
        "prediction": position,
        "base_x": round(LABEL + (base - low) * scale, 1),
        "prediction_x": round(LABEL + (position - low) * scale, 1),
        "label_width": LABEL,
    }


def _short(value: Any) -> str:
    number = _finite(value)
    if number is None:
        return "missing" if value is None else str(value)
    return f"{number:.4g}"


def group_bars(groups: list[dict]) -> dict:
    """Selection rate per group on a 0..1 axis, the groups at the extremes highlighted."""
    span = WIDTH - LABEL - 70
    bars = []
    for k, group in enumerate(groups):
        rate = _finite(group.get("rate")) or 0.0
        bars.append(
            {
                "y": k * ROW,
                "label": group.get("name"),
                "value": rate,
                "width": max(1.0, round(span * rate, 1)),
                "text_x": LABEL + max(1.0, round(span * rate, 1)) + 6,
                "extreme": group.get("extreme", ""),
            }
        )
    return {"bars": bars, "height": len(bars) * ROW + 4, "width": WIDTH, "label_width": LABEL}
