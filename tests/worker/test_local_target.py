# ruff: noqa: F811 - pytest fixtures imported from other modules are parameters here
"""The local deployment target end to end: ``LocalDriver`` starting real serving processes and a real router on
127.0.0.1, with small scikit-learn models converted by skl2onnx, and real V2 requests through the router.

Every test runs against real processes (``python -m worker.serving.server`` per version, ``python -m
worker.serving.router`` per target) started by the driver; the ``target`` fixture kills whatever they leave.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import signal
from collections import Counter

import numpy as np
import pytest

from apps.core.storage import get_storage
from apps.deployments.plans import DigestMismatch, DriverError, StaleFence
from tests.worker.local_target_fixtures import (  # noqa: F401 - fixtures
    artifacts,
    features,
    member,
    onnx_artifact,
    onnx_outputs,
    plan,
    processes_of,
    target,
    wait_for,
)
from worker.drivers import local_processes as procs
from worker.serving import metrics
from worker.serving.client import V2Client, get

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def send(url: str, x: np.ndarray, service: str = "credit") -> list[tuple[int, dict]]:
    """One V2 request per row through the router; (status, answer) of each."""
    with V2Client(url) as client:
        return [client.infer(service, [row.tolist()]) for row in x]


def by_version(observed) -> dict:
    return {m.version_id: m for m in observed.members}


def test_a_canary_gets_exactly_its_share_and_a_promotion_stops_the_old_version(target, artifacts):
    """Real router + two real serving processes (ONNX; the canary's artifact read from the storage folder)."""
    # given version 1 live, then version 2 (stored in artifact storage) as a 10 % canary
    v1, v2 = onnx_artifact(artifacts, "plus"), onnx_artifact(artifacts, "minus")
    target.apply(plan(member(v1, 1, 100), fence=1))
    key = get_storage().save(io.BytesIO(v2.path.read_bytes()), kind="artifacts").key
    target.apply(plan(member(v1, 1, 90), member(v2, 2, 10, uri=key), fence=2))

    # when 1,000 requests go through the router
    x = features(1000, seed=3)
    answers = send(target.endpoint(), x)

    # then 900 were answered by version 1 and 100 by version 2, each with its own model's predictions
    assert Counter(status for status, _ in answers) == {200: 1000}
    assert Counter(doc["model_version"] for _, doc in answers) == {"1": 900, "2": 100}
    expected = {"1": onnx_outputs(v1, x)[0], "2": onnx_outputs(v2, x)[0]}
    for i, (_, doc) in enumerate(answers):
        assert doc["outputs"][0]["data"] == [int(expected[doc["model_version"]][i])]
    observed = target.observe("credit")
    members = by_version(observed)
    assert observed.exists and observed.fence == 2 and "/v2/models/credit/infer" in observed.message
    assert (members["ver-1"].weight, members["ver-2"].weight) == (90, 10)
    assert (members["ver-1"].requests, members["ver-2"].requests) == (900, 100)
    assert (members["ver-1"].digest, members["ver-2"].digest) == (v1.digest, v2.digest)
    assert members["ver-2"].ready_replicas == 1 and members["ver-2"].errors == 0
    assert members["ver-1"].latency_p50_ms is not None and members["ver-1"].latency_p99_ms is not None

    # when version 2 is promoted to all the traffic
    v1_pid = _pid(target, "ver-1")
    target.apply(plan(member(v2, 2, 100, uri=key), fence=3))

    # then version 1's process is gone and only version 2 answers
    assert not procs.running(v1_pid)
    assert [m.version_id for m in target.observe("credit").members] == ["ver-2"]
    assert {doc["model_version"] for _, doc in send(target.endpoint(), x[:20])} == {"2"}


def _pid(target, version_id: str, service: str = "credit") -> int:

    return json.loads((target.state / "members" / service / f"{version_id}.json").read_text())["pid"]


def test_a_shadow_gets_a_copy_of_live_traffic_and_its_disagreements_are_counted(target, artifacts):
    """Real router mirroring to a real shadow serving process; the caller only ever sees the live answer."""
    # given version 1 live and version 2 (trained on another rule) as a shadow
    v1, v2 = onnx_artifact(artifacts, "plus"), onnx_artifact(artifacts, "minus")
    target.apply(plan(member(v1, 1, 100), member(v2, 2, 0, shadow=True)))
    x = features(200, seed=5)
    live_labels, shadow_labels = onnx_outputs(v1, x)[0], onnx_outputs(v2, x)[0]
    disagreements = int((live_labels != shadow_labels).sum())
    assert 0 < disagreements < 200  # the two models differ on some rows, not all

    # when 200 requests go through the router
    answers = send(target.endpoint(), x)

    # then every caller got version 1's answer
    assert {doc["model_version"] for _, doc in answers} == {"1"}
    assert [doc["outputs"][0]["data"][0] for _, doc in answers] == live_labels.tolist()
    # and the shadow answered every copy, each compared, the disagreements counted exactly
    shadow = wait_for("every copy compared", lambda: _compared(target, 200))
    assert shadow.shadow and shadow.shadow_compared == 200
    assert shadow.shadow_disagreed == disagreements
    assert shadow.requests == 200 and shadow.errors == 0
    assert by_version(target.observe("credit"))["ver-1"].requests == 200
    # and the router exposes the same counts in its /metrics
    samples = metrics.parse(get(target.endpoint(), "/metrics")[1].decode())
    assert metrics.value(samples, "assay_router_shadow_compared_total", version="2") == 200
    assert metrics.value(samples, "assay_router_shadow_disagreed_total", version="2") == disagreements
    assert metrics.value(samples, "assay_router_requests_total", version="1", role="live") == 200


def _compared(target, n: int):
    shadow = by_version(target.observe("credit"))["ver-2"]
    return shadow if shadow.shadow_compared >= n else None


def test_a_canary_expecting_other_features_shows_a_full_error_rate(target, artifacts):
    """Real router, a real 4-feature live process and a real 5-feature canary process."""
    # given a canary whose model takes 5 features beside a live model that takes 4
    v1, wide = onnx_artifact(artifacts, "plus", width=4), onnx_artifact(artifacts, "plus", width=5)
    target.apply(plan(member(v1, 1, 90), member(wide, 2, 10)))

    # when 100 requests with 4 features go through the router
    answers = send(target.endpoint(), features(100, seed=7))

    # then the canary's share failed with a 400 saying why, and observe shows its error rate at 100 %
    assert Counter(status for status, _ in answers) == {200: 90, 400: 10}
    refused = next(doc for status, doc in answers if status == 400)
    assert refused == {"error": "the model expects 5 feature(s) per row; the request has 4"}
    members = by_version(target.observe("credit"))
    assert members["ver-2"].requests == members["ver-2"].errors == 10
    assert members["ver-1"].requests == 90 and members["ver-1"].errors == 0


def test_a_stale_fence_is_refused_and_changes_nothing(target, artifacts):
    """Real router holding fence 5; the driver refuses a plan and a removal under fence 4 before acting."""
    v1, v2 = onnx_artifact(artifacts, "plus"), onnx_artifact(artifacts, "minus")
    target.apply(plan(member(v1, 1, 100), fence=5))

    with pytest.raises(StaleFence, match="fence 5"):
        target.apply(plan(member(v2, 2, 100), fence=4))
    with pytest.raises(StaleFence):
        target.remove("credit", fence=4)

    observed = target.observe("credit")
    assert observed.fence == 5 and [m.version_id for m in observed.members] == ["ver-1"]
    assert not (target.state / "members" / "credit" / "ver-2.json").exists()  # no process was started for it
    assert {doc["model_version"] for _, doc in send(target.endpoint(), features(5))} == {"1"}


def test_an_artifact_whose_bytes_are_not_the_digest_is_refused(target, artifacts):
    """The driver fetches and re-hashes the real file; nothing is started for bytes that are not the digest."""
    v1, v2 = onnx_artifact(artifacts, "plus"), onnx_artifact(artifacts, "minus")
    impostor = member(v1, 1, 100, uri=v2.uri)  # version 1's digest, version 2's bytes

    with pytest.raises(DigestMismatch, match=f"has sha256 {v2.digest}, not the approved digest {v1.digest}"):
        target.apply(plan(impostor))

    assert not list((target.state / "members").glob("*/*.json"))
    assert not [p for p in (target.state / "artifacts").iterdir()]
    assert not target.observe("credit").exists


def test_a_killed_serving_process_is_restarted_by_the_next_apply(target, artifacts):
    """A real serving process killed with SIGKILL; observe sees it down, the next apply starts a new one."""
    v1 = onnx_artifact(artifacts, "plus")
    the_plan = plan(member(v1, 1, 100))
    target.apply(the_plan)
    first = _pid(target, "ver-1")

    os.kill(first, signal.SIGKILL)
    wait_for("the process to die", lambda: not procs.running(first))
    down = by_version(target.observe("credit"))["ver-1"]
    assert (down.ready_replicas, down.state) == (0, "down")
    assert send(target.endpoint(), features(1))[0][0] == 502

    target.apply(the_plan)

    again = by_version(target.observe("credit"))["ver-1"]
    assert _pid(target, "ver-1") != first and procs.running(_pid(target, "ver-1"))
    assert (again.ready_replicas, again.restarts, again.digest) == (1, 1, v1.digest)
    assert [s for s, _ in send(target.endpoint(), features(3))] == [200, 200, 200]


def test_requests_a_member_never_answered_count_as_its_errors_after_it_is_back(target, artifacts):
    """A real serving process killed with SIGKILL while the real router keeps sending it traffic: the callers'
    502s stay in the member's counters once a new process answers (the process's own counters start at 0)."""
    v1 = onnx_artifact(artifacts, "plus")
    the_plan = plan(member(v1, 1, 100))
    target.apply(the_plan)
    first = _pid(target, "ver-1")
    os.kill(first, signal.SIGKILL)
    wait_for("the process to die", lambda: not procs.running(first))
    # when three requests find it down, then a new process answers two
    assert [s for s, _ in send(target.endpoint(), features(3))] == [502, 502, 502]
    target.apply(the_plan)
    assert [s for s, _ in send(target.endpoint(), features(2))] == [200, 200]
    # then observe counts all five, three of them errors
    back = by_version(target.observe("credit"))["ver-1"]
    assert (back.ready_replicas, back.requests, back.errors) == (1, 5, 3)


def test_a_killed_router_comes_back_with_its_last_configuration(target, artifacts):
    """The real router killed with SIGKILL; the next driver call starts it again from its saved state."""
    v1, v2 = onnx_artifact(artifacts, "plus"), onnx_artifact(artifacts, "minus")
    target.apply(plan(member(v1, 1, 80), member(v2, 2, 20), fence=7))
    url = target.endpoint()

    router_pid = json.loads((target.state / "router.json").read_text())["pid"]

    os.kill(router_pid, signal.SIGKILL)
    wait_for("the router to die", lambda: not procs.running(router_pid))

    observed = target.observe("credit")  # starts the router again, on the same port, from its saved state
    assert json.loads((target.state / "router.json").read_text())["pid"] != router_pid
    assert observed.fence == 7 and {m.version_id: m.weight for m in observed.members} == {"ver-1": 80, "ver-2": 20}
    answers = send(url, features(100, seed=9))
    assert Counter(doc["model_version"] for _, doc in answers) == {"1": 80, "2": 20}


def test_remove_leaves_no_process_and_keeps_the_fence(target, artifacts):
    """Router, live, canary and shadow processes all real; after remove none of them is running."""
    v1, v2, v3 = (
        onnx_artifact(artifacts, "plus"),
        onnx_artifact(artifacts, "minus"),
        onnx_artifact(artifacts, "plus", 5),
    )
    target.apply(plan(member(v1, 1, 90), member(v2, 2, 10), member(v3, 3, 0, shadow=True), fence=3))
    assert len(processes_of(target.state)) == 4

    target.remove("credit", fence=3)

    assert processes_of(target.state) == []
    assert target.services() == [] and not target.observe("credit").exists
    assert not list((target.state / "artifacts").iterdir())
    target.remove("credit", fence=3)  # idempotent
    with pytest.raises(StaleFence):
        target.remove("credit", fence=2)  # the removed service's fence is kept
    assert processes_of(target.state) == []


def test_a_process_serving_another_digest_is_replaced(target, artifacts):
    """A real serving process for version 1's first artifact, replaced when the plan names other bytes for it."""
    v1, v2 = onnx_artifact(artifacts, "plus"), onnx_artifact(artifacts, "minus")
    target.apply(plan(member(v1, 1, 100)))
    first = _pid(target, "ver-1")
    changed = member(v2, 1, 100)  # the same member, another approved artifact

    target.apply(plan(changed, fence=2))

    assert not procs.running(first) and procs.running(_pid(target, "ver-1"))
    observed = by_version(target.observe("credit"))["ver-1"]
    assert (observed.digest, observed.restarts) == (v2.digest, 0)
    assert sorted(p.name for p in (target.state / "artifacts").iterdir()) == [v2.digest]


def test_a_format_the_serving_process_cannot_load_is_refused_before_anything_starts(target, artifacts):
    """The driver's own check: no router and no serving process is started for a pickle."""
    v1 = onnx_artifact(artifacts, "plus")
    pickled = dataclasses.replace(member(v1, 1, 100), format="pickle")

    with pytest.raises(DriverError, match="serves onnx, skops, xgboost, lightgbm; not pickle"):
        target.apply(plan(pickled))

    assert processes_of(target.state) == []
