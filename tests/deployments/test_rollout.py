"""The rollout's pure decisions (``apps.deployments.rollout``): from a rollout's state and what a target
reports, the next action. No database, no target: these are functions of their inputs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from apps.deployments import rollout
from apps.deployments.plans import MemberStatus, Observed
from apps.deployments.strategies import DEFAULT_STEPS, DEFAULT_THRESHOLDS

NOW = datetime(2026, 12, 7, 13, 30, tzinfo=UTC)
DIGEST = "ab" * 32


def view(phase: str, *, strategy: str = "canary", step: int = 0, **kw) -> rollout.View:
    return rollout.View(
        phase=phase,
        step_index=step,
        steps=tuple(rollout.Step.of(s) for s in DEFAULT_STEPS[strategy]),
        thresholds=rollout.Thresholds.of(DEFAULT_THRESHOLDS[strategy]),
        version_id="7",
        digest=DIGEST,
        now=NOW,
        **kw,
    )


def seen(*, requests=0, errors=0, restarts=0, p99=None, ready=1, desired=1, digest=DIGEST, version_id="7"):
    member = MemberStatus(
        version_id=version_id,
        digest=digest,
        weight=10,
        desired_replicas=desired,
        ready_replicas=ready,
        restarts=restarts,
        requests=requests,
        errors=errors,
        latency_p99_ms=p99,
    )
    stable = MemberStatus(version_id="6", digest="cd" * 32, weight=90, ready_replicas=1, desired_replicas=1)
    return Observed(service="churn", exists=True, fence=3, model="churn", members=[stable, member])


def test_a_step_splits_live_traffic_with_the_stable_version():
    step = rollout.Step(weight=10, pause=0, analysis=60)
    assert rollout.traffic(step, has_stable=True, shadow_strategy=False) == {"stable": 90, "new": 10, "shadow": False}
    # without a stable version every step runs the new version alone
    assert rollout.traffic(step, has_stable=False, shadow_strategy=False) == {
        "stable": None,
        "new": 100,
        "shadow": False,
    }
    # a shadow mirrors the traffic: the stable version keeps all of it
    assert rollout.traffic(step, has_stable=True, shadow_strategy=True) == {"stable": 100, "new": 0, "shadow": True}
    # and each split makes a valid plan (live weights add up to 100)
    for has_stable in (True, False):
        split = rollout.traffic(step, has_stable=has_stable, shadow_strategy=False)
        members = [w for w in (split["stable"], split["new"]) if w is not None]
        assert sum(members) == 100


def test_what_follows_a_passed_step():
    canary = tuple(rollout.Step.of(s) for s in DEFAULT_STEPS["canary"])
    assert rollout.after_step(canary, 0) == rollout.NEXT
    assert rollout.after_step(canary, 1) == rollout.PROMOTE
    blue_green = tuple(rollout.Step.of(s) for s in DEFAULT_STEPS["blue_green"])
    assert rollout.after_step(blue_green, 0) == rollout.PAUSE_PERSON  # green is up: a person switches
    timed = (rollout.Step(weight=10, pause=30, analysis=0), rollout.Step(weight=50, pause=0, analysis=0))
    assert rollout.after_step(timed, 0) == rollout.PAUSE_TIMED


def test_apply_then_wait_for_readiness_then_start_the_window_from_the_counters():
    assert rollout.decide(view("apply")).kind == rollout.APPLY
    deadline = NOW + timedelta(seconds=60)
    waiting = rollout.decide(view("ready", ready_deadline=deadline), seen(ready=0))
    assert waiting.kind == rollout.WAIT and waiting.at == NOW + timedelta(seconds=2)
    ready = rollout.decide(view("ready", ready_deadline=deadline), seen(requests=40, errors=1, restarts=0))
    assert ready.kind == rollout.READY and ready.baseline == {"requests": 40, "errors": 1, "restarts": 0}


def test_not_ready_by_the_deadline_rolls_back_saying_what_was_seen():
    late = view("ready", ready_deadline=NOW - timedelta(seconds=1))
    action = rollout.decide(late, seen(ready=0, desired=2))
    assert action.kind == rollout.ROLLBACK and "0 of 2 ready" in action.reason
    gone = rollout.decide(late, Observed(service="churn", exists=False))
    assert gone.kind == rollout.ROLLBACK and "not running" in gone.reason


def test_a_target_running_another_digest_rolls_back():
    action = rollout.decide(view("ready", ready_deadline=NOW), seen(digest="ee" * 32))
    assert action.kind == rollout.ROLLBACK and "ee" * 32 in action.reason


def test_the_window_is_judged_on_the_deltas_of_the_counters():
    baseline = {"requests": 1000, "errors": 50, "restarts": 1}
    before_end = view("analyse", analysis_until=NOW + timedelta(seconds=5), baseline=baseline)
    assert rollout.decide(before_end, seen()).kind == rollout.WAIT
    ended = view("analyse", analysis_until=NOW, baseline=baseline)
    # 200 requests and 2 errors in the window (1 %), p99 120 ms, no new restart: healthy, although the
    # cumulative rate since start (52 of 1200) would cross the canary's 2 %
    passed = rollout.decide(ended, seen(requests=1200, errors=52, restarts=1, p99=120.0))
    assert passed.kind == rollout.PASSED and passed.then == rollout.NEXT
    assert passed.figures["requests"] == 200 and passed.figures["errors"] == 2
    assert passed.figures["error_rate"] == 0.01 and passed.figures["restarts"] == 0


def test_a_crossed_threshold_rolls_back_with_the_figures():
    ended = view("analyse", analysis_until=NOW, baseline={"requests": 0, "errors": 0, "restarts": 0})
    errors = rollout.decide(ended, seen(requests=100, errors=30, p99=80.0))
    assert errors.kind == rollout.ROLLBACK and "error rate 30.00% (30 of 100)" in errors.reason
    assert errors.figures["error_rate"] == 0.3
    slow = rollout.decide(ended, seen(requests=100, errors=0, p99=900.0))
    assert slow.kind == rollout.ROLLBACK and "p99 latency 900.0 ms > 500 ms" in slow.reason
    crashing = rollout.decide(ended, seen(requests=100, restarts=3))
    assert crashing.kind == rollout.ROLLBACK and "3 restarts > 1" in crashing.reason


def test_too_little_traffic_is_not_judged_either_way():
    ended = view("analyse", analysis_until=NOW, baseline={"requests": 0, "errors": 0, "restarts": 0})
    action = rollout.decide(ended, seen(requests=5, errors=0))
    assert action.kind == rollout.UNJUDGED and "5 requests < the 20 needed" in action.reason
    # but errors among few requests still roll back
    assert rollout.decide(ended, seen(requests=5, errors=5)).kind == rollout.ROLLBACK


def test_the_last_step_promotes_and_a_timed_pause_ends():
    ended = view("analyse", step=1, analysis_until=NOW, baseline={})
    assert rollout.decide(ended, seen(requests=100)).then == rollout.PROMOTE
    assert rollout.decide(view("promote")).kind == rollout.APPLY
    pausing = view("pause", pause_until=NOW + timedelta(seconds=30))
    assert rollout.decide(pausing).kind == rollout.WAIT
    over = rollout.decide(view("pause", pause_until=NOW))
    assert over.kind == rollout.PASSED and over.then == rollout.NEXT


def test_a_step_without_analysis_passes_once_ready():
    direct = rollout.View(
        phase="analyse",
        step_index=0,
        steps=(rollout.Step(weight=100, pause=0, analysis=0),),
        thresholds=rollout.Thresholds.of(DEFAULT_THRESHOLDS["direct"]),
        version_id="7",
        digest=DIGEST,
        now=NOW,
        analysis_until=NOW,
    )
    action = rollout.decide(direct, seen(requests=0))
    assert action.kind == rollout.PASSED and action.then == rollout.PROMOTE
