"""Rollouts end to end on the local target: the real engine, the real local driver, real serving processes.

Each test stores real ONNX models (trained here, converted with skl2onnx) as approved versions' artifacts,
deploys them to a local target whose state folder is the test's own, and runs the rollout's jobs through
the real job runner (``tests/deployments/serving.drive``, what the workers do) while real V2 inference
requests go through the local router on 127.0.0.1. The last test runs the jobs in real worker processes
(``python -m worker --beat``) and SIGKILLs one mid-rollout. Every process started is killed at the end.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import signal
import time

import pytest

from apps.deployments import services
from apps.deployments.choices import DeploymentState, Phase
from apps.deployments.models import Deployment
from apps.jobs.events import job_kind
from apps.jobs.models import Job
from tests.deployments.conftest import stored_version, who
from tests.deployments.serving import drive, onnx_model
from tests.worker.local_target_fixtures import features, kill_all
from worker.drivers.registry import driver_for
from worker.serving.client import V2Client

pytestmark = [pytest.mark.slow, pytest.mark.django_db, pytest.mark.timeout(240)]

FAST = {"min_requests": 5, "max_p99_ms": 5000.0}


@pytest.fixture(autouse=True)
def _quick_rollouts(settings):
    settings.ASSAY_DEPLOY_POLL_SECONDS = 0.2
    settings.ASSAY_DEPLOY_READY_TIMEOUT_SECONDS = 30


@pytest.fixture
def local(admin, staging, tmp_path):
    """A local target on this test's own state folder; every process it started is killed afterwards."""
    state = tmp_path / "target"
    target = services.target_create(
        actor=who(admin),
        name="lab",
        kind="local",
        environment="staging",
        settings={"state_dir": str(state), "ready_wait_seconds": 30},
    )
    yield target
    kill_all(state)


class Traffic:
    """Real V2 inference requests through the target's router, four features a row; answers counted by status."""

    def __init__(self, target, service: str = "churn") -> None:
        self.url = driver_for(target).endpoint()
        self.service = service
        self.rows = itertools.cycle(features(64, 4, seed=3).tolist())
        self.statuses: dict[int, int] = {}
        self.answered_by: dict[str, int] = {}  # version label -> answers the callers got from it

    def __call__(self, n: int = 10) -> None:
        with V2Client(self.url, timeout=10) as client:
            for _ in range(n):
                status, answer = client.infer(self.service, [next(self.rows)])
                self.statuses[status] = self.statuses.get(status, 0) + 1
                if status == 200:
                    version = str(answer.get("model_version"))
                    self.answered_by[version] = self.answered_by.get(version, 0) + 1


def serving(model, author, approve, start, number: int, *, width: int = 4, seed: int = 0, **kw) -> Deployment:
    version = stored_version(model, author, number, onnx_model(width, seed))
    return start(approve(version), **kw)


def stable_v1(model, author, approve, start) -> Deployment:
    """Version 1 deployed directly and serving all traffic."""
    first = serving(model, author, approve, start, 1, steps=[{"weight": 100, "analysis": 0}])
    return drive(first, until=(DeploymentState.SUCCEEDED,))


def weights(target, service: str = "churn") -> dict[str, int]:
    """{version number: percent of live traffic} as the target reports it (members carry the version's id)."""
    from apps.registry.models import ModelVersion

    observed = driver_for(target).observe(service)
    numbers = dict(
        ModelVersion.objects.filter(pk__in=[int(m.version_id) for m in observed.members]).values_list("pk", "number")
    )
    return {str(numbers[int(m.version_id)]): m.weight for m in observed.members}


def test_a_canary_rolls_forward_step_by_step_and_supersedes_the_stable_version(
    local, model, author, approve, start, audit_mark
):
    # given version 1 serving all traffic on the local target
    v1 = stable_v1(model, author, approve, start)
    traffic = Traffic(local)
    traffic(5)
    assert traffic.statuses == {200: 5}
    assert weights(local) == {"1": 100}
    mark = audit_mark()
    # when version 2 rolls out as a canary (30 %, then 70 %), with real requests flowing
    canary = serving(
        model,
        author,
        approve,
        start,
        2,
        seed=1,
        strategy="canary",
        thresholds=FAST,
        steps=[{"weight": 30, "analysis": 2}, {"weight": 70, "analysis": 2}],
    )
    seen: list[dict] = []

    def between() -> None:
        traffic(8)
        canary.refresh_from_db()
        if canary.phase == Phase.ANALYSE and canary.traffic not in seen:
            seen.append(dict(canary.traffic))

    done = drive(canary, until=(DeploymentState.SUCCEEDED, DeploymentState.ROLLED_BACK), between=between)
    # then it passed both steps on real traffic and took over: version 1 is superseded and stopped
    assert done.state == DeploymentState.SUCCEEDED, done.message
    assert {"stable": 70, "new": 30, "shadow": False} in seen and {"stable": 30, "new": 70, "shadow": False} in seen
    steps = list(done.timeline.order_by("id"))
    assert [(s.index, s.weight, s.outcome) for s in steps] == [(0, 30, "passed"), (1, 70, "passed")]
    assert all(s.figures["requests"] >= 5 and s.figures["errors"] == 0 for s in steps), [s.figures for s in steps]
    v1.refresh_from_db()
    assert v1.state == DeploymentState.SUPERSEDED
    assert weights(local) == {"2": 100}
    assert traffic.statuses.get(200, 0) >= 30 and set(traffic.statuses) == {200}
    actions = mark.actions(target_type="deployment")
    assert actions.count("deployment.step_completed") == 2 and actions[-1] == "deployment.succeeded"
    assert "deployment.superseded" in actions
    # and no apply was refused as stale: version 2's fences continue above version 1's on the target
    results = [str(j.result) for j in Job.objects.filter(kind=services.ADVANCE_JOB, target_id=str(canary.public_id))]
    assert results and not [r for r in results if "stale fence" in r]


def test_a_canary_expecting_other_features_rolls_back_by_itself(local, model, author, approve, start, audit_mark):
    # given version 1 serving, and version 3: a model of three features where callers send four
    stable_v1(model, author, approve, start)
    traffic = Traffic(local)
    mark = audit_mark()
    canary = serving(
        model,
        author,
        approve,
        start,
        3,
        width=3,
        strategy="canary",
        thresholds=FAST,
        steps=[{"weight": 50, "analysis": 2}, {"weight": 100, "analysis": 2}],
    )
    # when it rolls out with real requests flowing
    done = drive(canary, until=(DeploymentState.SUCCEEDED, DeploymentState.ROLLED_BACK), between=lambda: traffic(10))
    # then its errors crossed the threshold and the rollout rolled back on its own, with the figures
    assert done.state == DeploymentState.ROLLED_BACK, done.message
    [step] = done.timeline.all()
    assert step.outcome == "failed" and step.figures["error_rate"] > 0.5 and step.figures["requests"] >= 5
    started = mark.new(action="deployment.rollback_started")[0]
    assert started.actor_type == "system" and "error rate" in started.reason
    assert started.after["figures"]["error_rate"] == step.figures["error_rate"]
    assert [j.params["payload"]["deployment"] for j in Job.objects.filter(kind=job_kind("deployment.rolled_back"))] == [
        str(canary.public_id)
    ]
    # and version 1 serves all traffic again, version 3 gone
    assert weights(local) == {"1": 100}
    traffic.statuses.clear()
    traffic(10)
    assert traffic.statuses == {200: 10}


def test_a_halt_takes_effect_within_seconds_and_resume_continues(local, model, author, approve, start, manager):
    # given version 1 serving and a canary of version 2 at 50 %, being analysed
    stable_v1(model, author, approve, start)
    traffic = Traffic(local)
    canary = serving(
        model,
        author,
        approve,
        start,
        2,
        seed=1,
        strategy="canary",
        thresholds=FAST,
        steps=[{"weight": 50, "analysis": 600}],
    )
    drive(canary, until=(DeploymentState.PROGRESSING,), phase=Phase.ANALYSE, between=lambda: traffic(2))
    assert weights(local) == {"1": 50, "2": 50}
    # when a person halts it
    halted_at = time.monotonic()
    services.deployment_halt(actor=who(manager), deployment_id=canary.public_id, reason="complaints")
    drive(canary, until=(DeploymentState.HALTED,), pause=0.05)
    took = time.monotonic() - halted_at
    # then within seconds all live traffic is on version 1, version 2 still up at 0 %
    assert took < 5, took
    assert weights(local) == {"1": 100, "2": 0}
    traffic.statuses.clear()
    traffic(10)
    assert traffic.statuses == {200: 10}
    # and resuming runs the step again: version 2 back at 50 %
    services.deployment_resume(actor=who(manager), deployment_id=canary.public_id, reason="cause found")
    drive(canary, until=(DeploymentState.PROGRESSING,), phase=Phase.ANALYSE, between=lambda: traffic(2))
    assert weights(local) == {"1": 50, "2": 50}
    assert [s.outcome for s in canary.timeline.order_by("id")] == ["halted", "running"]


def test_a_governance_refusal_at_the_promotion_applies_nothing_new(
    local, model, author, approve, start, audit_mark, manager
):
    """The release is withdrawn while the canary runs: the promotion's re-check refuses it, the deployment
    fails, and the target goes back to the stable version (nothing of the refused plan was applied)."""
    from apps.releases import services as releases

    stable_v1(model, author, approve, start)
    traffic = Traffic(local)
    canary = serving(
        model,
        author,
        approve,
        start,
        2,
        seed=1,
        strategy="canary",
        steps=[{"weight": 20, "analysis": 1}],
        thresholds={"min_requests": 1, "max_p99_ms": 5000.0},
    )
    drive(canary, until=(DeploymentState.PROGRESSING,), between=lambda: traffic(10))
    releases.release_cancel(actor=who(manager), release_id=canary.release.public_id, reason="withdrawn")
    mark = audit_mark()
    done = drive(canary, until=(DeploymentState.FAILED,), between=lambda: traffic(20))
    assert "cancelled" in done.message
    actions = mark.actions(target_type="deployment")
    refused = actions.index("deployment.refused")
    assert actions[refused : refused + 2] == ["deployment.refused", "deployment.failed"], actions
    assert "deployment.succeeded" not in actions and "deployment.step_applied" not in actions[refused:]
    assert weights(local) == {"1": 100}


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_rollout_leaves_the_rollout_to_the_next_one(
    local, model, author, approve, start, settings, tmp_path
):
    """Real worker processes (``python -m worker --beat``, no broker) on the suite's database: the first is
    SIGKILLed while the rollout is under way; a second one takes the rollout over (a higher fence) and
    finishes it, and the version serves."""
    from tests.support.db import database_url
    from tests.worker.test_processes import wait_for
    from tests.worker.test_standalone import ROOT, Processes

    wake = tmp_path / "worker.wake"
    settings.CELERY_BROKER_URL = "database://"
    settings.ASSAY_WORKER_WAKE_FILE = str(wake)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "controlplane.settings",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": "database://",
        "ASSAY_VAR_DIR": str(settings.VAR_DIR),
        "ASSAY_STORAGE_URL": settings.ASSAY_STORAGE_URL,
        "ASSAY_WORKER_WAKE_FILE": str(wake),
        "ASSAY_WORKER_HEARTBEAT_SECONDS": "0.5",
        "ASSAY_JOB_LEASE_SECONDS": "3",
        "ASSAY_SWEEP_INTERVAL_SECONDS": "1",
        "ASSAY_JOB_QUEUED_GRACE_SECONDS": "2",
        "ASSAY_DEPLOY_TICK_SECONDS": "0.3",
        "ASSAY_DEPLOY_POLL_SECONDS": "0.3",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
    }
    group = Processes(env)
    try:
        # given a rollout of version 1 whose step is analysed for a few seconds, and a worker running it
        deployment = serving(
            model, author, approve, start, 1, steps=[{"weight": 100, "analysis": 4}], thresholds={"min_requests": 0}
        )
        first = group.worker("--beat")
        wait_for(
            "the first worker to apply the step",
            lambda: Deployment.objects.filter(pk=deployment.pk, phase=Phase.ANALYSE).exists(),
            timeout=60,
        )
        fence = Deployment.objects.get(pk=deployment.pk).fence
        # when the worker is killed outright, mid-rollout
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        assert Deployment.objects.get(pk=deployment.pk).state == DeploymentState.PROGRESSING
        # then another worker takes the rollout over and finishes it
        group.worker("--beat")
        wait_for(
            "the rollout to succeed",
            lambda: Deployment.objects.filter(pk=deployment.pk, state=DeploymentState.SUCCEEDED).exists(),
            timeout=90,
            state=lambda: str(Deployment.objects.filter(pk=deployment.pk).values("state", "phase", "message").first()),
        )
        done = Deployment.objects.get(pk=deployment.pk)
        assert done.fence > fence and done.traffic == {"stable": None, "new": 100, "shadow": False}
        assert [s.outcome for s in done.timeline.all()] == ["passed"]
        traffic = Traffic(local)
        traffic(5)
        assert traffic.statuses == {200: 5}
        assert Job.objects.filter(kind=services.ADVANCE_JOB, status="failed").count() == 0
    finally:
        group.stop_all()


# ---------------------------------------------------------------------------------------------
# The reconciler: what runs on the target, compared with what was approved and deployed there


def test_the_reconciler_flags_a_hand_made_version_and_an_expired_approval_once_each(
    local, model, author, approve, start, audit_mark, tmp_path
):
    from datetime import timedelta

    from django.utils import timezone

    from apps.deployments import planning
    from apps.deployments.plans import Member, Plan
    from apps.releases.models import ReleaseRequest
    from worker import reconciler

    # given version 1 deployed and serving: a pass finds nothing
    v1 = stable_v1(model, author, approve, start)
    mark = audit_mark()
    assert reconciler.reconcile_all() == 0
    local.refresh_from_db()
    assert local.drift == [] and local.reconciled_at is not None
    assert [a for a in mark.actions() if a.startswith("deployment.drift")] == []
    # when someone runs, by hand, an unapproved model beside it with half of the traffic
    rogue = tmp_path / "rogue.onnx"
    rogue.write_bytes(onnx_model(4, seed=7))
    digest = hashlib.sha256(rogue.read_bytes()).hexdigest()
    driver = driver_for(local)
    by_hand = Member(
        deployment_id="by-hand",
        release_id="none",
        version_id="999999",
        version="99",
        digest=digest,
        artifact_uri=rogue.as_uri(),
        format="onnx",
        weight=50,
    )
    fence = driver.observe("churn").fence + 10
    driver.apply(Plan(service="churn", model="churn", members=(planning.member(v1, weight=50), by_hand), fence=fence))
    # then the next pass flags the unknown version and the changed split, audited and published
    mark = audit_mark()
    assert reconciler.reconcile_all() == 2
    local.refresh_from_db()
    assert sorted(f["kind"] for f in local.drift) == ["traffic_changed", "unknown_version"]
    unknown = next(f for f in local.drift if f["kind"] == "unknown_version")
    assert unknown["digest"] == digest and unknown["version_id"] == "999999"
    detected = mark.new(action="deployment.drift_detected")
    assert len(detected) == 2 and {e.outcome for e in detected} == {"failed"}
    published = [j.params["payload"] for j in Job.objects.filter(kind=job_kind("deployment.drift_detected"))]
    assert sorted(p["kind"] for p in published) == ["traffic_changed", "unknown_version"]
    assert all(p["target"] == "lab" and p["environment"] == "staging" for p in published)
    # and a pass that finds the same reports nothing new
    assert reconciler.reconcile_all() == 0
    # when version 1's approval passes its revalidation date, that is flagged too
    ReleaseRequest.objects.filter(pk=v1.release_id).update(revalidate_at=timezone.now() - timedelta(days=1))
    assert reconciler.reconcile_all() == 1
    local.refresh_from_db()
    [expired] = [f for f in local.drift if f["kind"] == "not_approved"]
    assert "revalidation date" in expired["message"] and expired["deployment"] == str(v1.public_id)


def test_a_shadow_sees_a_copy_of_live_traffic_never_answers_and_waits_for_a_person_to_promote_it(
    local, model, author, approve, start, manager, audit_mark
):
    # given version 1 serving, and version 2 rolled out as a shadow
    stable_v1(model, author, approve, start)
    traffic = Traffic(local)
    shadow = serving(
        model,
        author,
        approve,
        start,
        2,
        seed=1,
        strategy="shadow",
        thresholds={**FAST, "min_requests": 10},
        steps=[{"weight": 0, "pause": None, "analysis": 2}],
    )
    # when live requests flow while it is analysed
    paused = drive(shadow, until=(DeploymentState.PAUSED, DeploymentState.ROLLED_BACK), between=lambda: traffic(8))
    # then every answer came from version 1; version 2 got copies, compared with the live answers
    assert paused.state == DeploymentState.PAUSED, paused.message
    assert set(traffic.answered_by) == {"1"}
    [step] = paused.timeline.all()
    assert step.outcome == "passed" and step.figures["shadow_compared"] >= 10 and step.figures["errors"] == 0
    assert weights(local) == {"1": 100, "2": 0}
    # and a person's resume promotes it: version 2 answers everything, version 1 is superseded
    services.deployment_resume(actor=who(manager), deployment_id=shadow.public_id, reason="shadow agreed")
    done = drive(shadow, until=(DeploymentState.SUCCEEDED,), between=lambda: traffic(4))
    assert weights(local) == {"2": 100}
    traffic.answered_by.clear()
    traffic(6)
    assert traffic.answered_by == {"2": 6}
    assert done.state == DeploymentState.SUCCEEDED


def test_blue_green_brings_the_new_version_up_idle_then_switches_all_traffic_at_once(
    local, model, author, approve, start, manager
):
    # given version 1 serving, and version 2 rolled out blue/green (its default steps, a short analysis)
    stable_v1(model, author, approve, start)
    traffic = Traffic(local)
    steps = [{"weight": 0, "pause": None, "analysis": 0}, {"weight": 100, "pause": 0, "analysis": 2}]
    green = serving(model, author, approve, start, 2, seed=1, strategy="blue_green", thresholds=FAST, steps=steps)
    # when it is up beside version 1, it takes no traffic and waits for a person
    waiting = drive(green, until=(DeploymentState.PAUSED,), between=lambda: traffic(4))
    assert weights(local) == {"1": 100, "2": 0}
    assert set(traffic.answered_by) == {"1"}
    # and once resumed, all traffic moves at once (version 1 kept at 0 % while version 2 is analysed)
    services.deployment_resume(actor=who(manager), deployment_id=waiting.public_id, reason="switch")
    seen: list[dict] = []

    def between() -> None:
        traffic(6)
        seen.append(weights(local))

    done = drive(green, until=(DeploymentState.SUCCEEDED, DeploymentState.ROLLED_BACK), between=between)
    # then it passed on real traffic and version 1 is gone
    assert done.state == DeploymentState.SUCCEEDED, done.message
    assert {"1": 0, "2": 100} in seen and all(w.get("2", 0) in (0, 100) for w in seen)
    assert weights(local) == {"2": 100}
    assert [(s.weight, s.outcome) for s in done.timeline.order_by("id")][-1] == (100, "passed")
