"""The router's choice of member and its saved table (``worker.serving.routing``), and the histogram the
serving processes expose (``worker.serving.metrics``): pure code, run in this process on real files.
"""

from __future__ import annotations

from collections import Counter

import pytest

from worker.serving.metrics import Histogram, buckets, parse, quantile_ms
from worker.serving.routing import ConfigRefused, SmoothWeighted, StaleConfig, Table, service_from_config


@pytest.mark.parametrize("weights", [[90, 10], [50, 50], [1, 99], [33, 33, 34], [100, 0], [5, 0, 95]])
def test_smooth_weighted_round_robin_gives_each_member_exactly_its_weight(weights):
    """The router's chooser itself (pure code, no process): exact shares over 1,000 picks and every 100."""
    chooser = SmoothWeighted(weights)
    picks = [chooser.pick() for _ in range(1000)]
    assert Counter(picks) == {i: w * 10 for i, w in enumerate(weights) if w}
    # and interleaves: every run of sum(weights) picks holds each member exactly its weight
    assert Counter(picks[100:200]) == {i: w for i, w in enumerate(weights) if w}


def test_ninety_ten_sends_the_sixth_request_of_every_ten_to_the_canary():
    """The router's chooser itself: the order of a 90/10 split is fixed, so tests can count on it."""
    chooser = SmoothWeighted([90, 10])
    assert [chooser.pick() for _ in range(10)] == [0, 0, 0, 0, 0, 1, 0, 0, 0, 0]


def test_no_weight_no_pick():
    """The router's chooser itself: nothing to choose from when no member has a weight."""
    assert SmoothWeighted([0, 0]).pick() is None


def _config(fence: int, **member) -> dict:
    base = {"version_id": "v1", "version": "1", "digest": "d", "port": 18001, "weight": 100, "shadow": False}
    return {"fence": fence, "model": "m", "members": [{**base, **member}]}


def test_the_table_refuses_a_stale_fence_keeps_counters_and_survives_a_reload(tmp_path):
    """The router's table on a real state file: fencing, counters kept across a change, reload after a restart."""
    table = Table(tmp_path / "state.json")
    table.put(service_from_config("credit", _config(4)))
    table.services["credit"].members[0].stats.routed = 7

    with pytest.raises(StaleConfig):
        table.put(service_from_config("credit", _config(3)))
    table.put(service_from_config("credit", _config(5)))  # the same member: its counters carry over
    assert table.services["credit"].members[0].stats.routed == 7
    table.remove("credit", 6)
    with pytest.raises(StaleConfig):
        table.remove("credit", 5)

    again = Table(tmp_path / "state.json")
    again.load()
    assert again.services["credit"].fence == 6 and again.services["credit"].removed
    with pytest.raises(StaleConfig):
        again.put(service_from_config("credit", _config(5)))


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ({"model": "m"}, "fence"),
        (_config(1, weight=90), "add up to 100"),
        (_config(1, port=0), "port must be"),
        ({"fence": 1, "members": "x"}, "must be a list"),
        ({"fence": 1, "members": [{"version": "1"}]}, "needs version_id"),
    ],
)
def test_a_configuration_of_the_wrong_shape_is_refused_saying_why(config, reason):
    """The router's configuration check (pure code): each wrong shape is refused with its reason."""
    with pytest.raises(ConfigRefused, match=reason):
        service_from_config("credit", config)


def test_histogram_quantiles_interpolate_within_buckets_and_read_back_from_the_text():
    """The serving processes' histogram and the driver's reader of the text format, on the same numbers."""
    histogram = Histogram((0.001, 0.002, 0.004))
    for seconds in [0.0005] * 50 + [0.0015] * 49 + [0.003]:
        histogram.observe(seconds)
    assert histogram.quantile_ms(0.5) == pytest.approx(1.0)
    assert histogram.quantile_ms(0.99) == pytest.approx(2.0)
    assert Histogram().quantile_ms(0.5) is None

    text = "\n".join(histogram.lines("lat", 'svc="a"'))
    read = buckets(parse(text), "lat")
    assert read == [(0.001, 50), (0.002, 99), (0.004, 100), (float("inf"), 100)]
    assert quantile_ms(read, 0.5) == histogram.quantile_ms(0.5)
