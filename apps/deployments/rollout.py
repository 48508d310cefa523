"""The rollout's decisions, as pure functions: given where a rollout is and what the target reports, what next.

No database, no clock, no driver: the engine (``worker/rollouts.py``) reads the deployment into a
``View``, asks the target for an ``Observed`` when the phase needs one, calls ``decide`` and hands the
``Action`` to a service that records it under the rollout's fence. The same inputs give the same action.

Within a step the phases run::

    apply ──► ready ──► analyse ──► (next step's apply | pause (timed) | paused for a person | promote)
                │            │
                └─ not ready by the deadline, or the digest is not the approved one ─┐
                             └─ a threshold crossed ───────────────────────────────┴─► roll back

Health is judged on the new version's counters' *deltas* over the analysis window (the target's
counters are cumulative since the member started): error rate = errors / requests, p99 latency as
reported at the end of the window, restarts. Fewer requests than ``min_requests`` is too little to
judge: the rollout pauses for a person rather than promote or roll back on no evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .choices import Phase
from .plans import MemberStatus, Observed

# Actions
APPLY = "apply"  # apply the current step's (or the promotion's) traffic
WAIT = "wait"  # nothing to do before ``at``
READY = "ready"  # the new version is ready: start the analysis window (``baseline`` holds its counters)
PASSED = "passed"  # the step passed on ``figures``; ``then`` says what follows
ROLLBACK = "rollback"  # roll back automatically, for ``reason`` (with ``figures`` when health was judged)
UNJUDGED = "unjudged"  # too little traffic to judge: wait for a person

# What follows a passed step
NEXT, PAUSE_TIMED, PAUSE_PERSON, PROMOTE = "next", "pause", "person", "promote"


@dataclass(frozen=True)
class Step:
    weight: int
    pause: int | None
    analysis: int

    @classmethod
    def of(cls, raw: dict) -> Step:
        return cls(weight=int(raw["weight"]), pause=raw.get("pause", 0), analysis=int(raw.get("analysis", 0)))


@dataclass(frozen=True)
class Thresholds:
    max_error_rate: float
    max_p99_ms: float
    max_restarts: int
    min_requests: int

    @classmethod
    def of(cls, raw: dict) -> Thresholds:
        return cls(
            max_error_rate=float(raw["max_error_rate"]),
            max_p99_ms=float(raw["max_p99_ms"]),
            max_restarts=int(raw["max_restarts"]),
            min_requests=int(raw["min_requests"]),
        )


@dataclass(frozen=True)
class View:
    """What the decisions read of a progressing rollout."""

    phase: str
    step_index: int
    steps: tuple[Step, ...]
    thresholds: Thresholds
    version_id: str  # the new version's public id, as members carry it
    digest: str  # the approved sha256
    now: datetime
    ready_deadline: datetime | None = None
    analysis_until: datetime | None = None
    pause_until: datetime | None = None
    baseline: dict = field(default_factory=dict)
    poll_seconds: float = 2.0
    # A scheduled scoring job (a CronJob, a job definition): it has no replicas waiting for requests, so it
    # is ready once the target holds it (with the approved digest, checked first), and runs on its schedule.
    batch: bool = False

    @property
    def step(self) -> Step:
        return self.steps[self.step_index]


@dataclass(frozen=True)
class Action:
    kind: str
    at: datetime | None = None
    reason: str = ""
    baseline: dict = field(default_factory=dict)
    figures: dict = field(default_factory=dict)
    then: str = ""


def traffic(step: Step, *, has_stable: bool, shadow_strategy: bool) -> dict:
    """The split a step asks for: {"stable": %, "new": %, "shadow": bool}; without a stable version, all to the new."""
    if not has_stable:
        return {"stable": None, "new": 100, "shadow": False}
    if shadow_strategy:
        return {"stable": 100, "new": 0, "shadow": True}
    return {"stable": 100 - step.weight, "new": step.weight, "shadow": False}


def after_step(steps: tuple[Step, ...], index: int) -> str:
    """What follows step ``index`` once it passed: the next step, a pause (timed or for a person), or promotion."""
    pause = steps[index].pause
    if pause is None:
        return PAUSE_PERSON
    if pause > 0:
        return PAUSE_TIMED
    return NEXT if index + 1 < len(steps) else PROMOTE


def member(observed: Observed | None, version_id: str) -> MemberStatus | None:
    if observed is None or not observed.exists:
        return None
    return next((m for m in observed.members if m.version_id == version_id), None)


def counters(status: MemberStatus) -> dict:
    return {"requests": status.requests, "errors": status.errors, "restarts": status.restarts}


def health(baseline: dict, status: MemberStatus) -> dict:
    """The figures a step is judged on: the counters' deltas since ``baseline``, and the p99 now."""
    requests = max(0, status.requests - int(baseline.get("requests", 0)))
    errors = max(0, status.errors - int(baseline.get("errors", 0)))
    restarts = max(0, status.restarts - int(baseline.get("restarts", 0)))
    return {
        "requests": requests,
        "errors": errors,
        "error_rate": round(errors / requests, 6) if requests else None,
        "p99_ms": status.latency_p99_ms,
        "restarts": restarts,
        "ready_replicas": status.ready_replicas,
        "shadow_compared": status.shadow_compared,
        "shadow_disagreed": status.shadow_disagreed,
    }


def judge(figures: dict, thresholds: Thresholds) -> tuple[bool | None, list[str]]:
    """(True: healthy, False: a threshold crossed, None: too little traffic to judge; the reasons)."""
    crossed = []
    if figures["restarts"] > thresholds.max_restarts:
        crossed.append(f"{figures['restarts']} restarts > {thresholds.max_restarts}")
    if figures["error_rate"] is not None and figures["error_rate"] > thresholds.max_error_rate:
        crossed.append(
            f"error rate {figures['error_rate']:.2%} ({figures['errors']} of {figures['requests']}) "
            f"> {thresholds.max_error_rate:.2%}"
        )
    if figures["p99_ms"] is not None and figures["requests"] and figures["p99_ms"] > thresholds.max_p99_ms:
        crossed.append(f"p99 latency {figures['p99_ms']:.1f} ms > {thresholds.max_p99_ms:.0f} ms")
    if crossed:
        return False, crossed
    if figures["requests"] < thresholds.min_requests:
        return None, [f"{figures['requests']} requests < the {thresholds.min_requests} needed to judge"]
    return True, []


def _ready(status: MemberStatus | None) -> bool:
    return status is not None and status.ready_replicas >= max(1, status.desired_replicas)


def decide(view: View, observed: Observed | None = None) -> Action:
    """The next action of a progressing rollout, from its ``view`` and (for readiness and analysis) ``observed``."""
    now = view.now
    poll = now + timedelta(seconds=view.poll_seconds)
    if view.phase in (Phase.APPLY, Phase.PROMOTE):
        return Action(APPLY)
    if view.phase == Phase.PAUSE:
        if view.pause_until is not None and now < view.pause_until:
            return Action(WAIT, at=view.pause_until)
        return Action(PASSED, then=NEXT if view.step_index + 1 < len(view.steps) else PROMOTE)
    status = member(observed, view.version_id)
    if status is not None and status.digest and status.digest != view.digest:
        return Action(ROLLBACK, reason=f"the target runs digest {status.digest}, not the approved {view.digest}")
    if view.phase == Phase.READY:
        if status is not None and view.batch:
            return Action(READY, baseline=counters(status))
        if _ready(status):
            return Action(READY, baseline=counters(status))
        if view.ready_deadline is not None and now >= view.ready_deadline:
            seen = f"{status.ready_replicas} of {max(1, status.desired_replicas)} ready" if status else "not running"
            detail = f" ({status.message})" if status is not None and status.message else ""
            return Action(ROLLBACK, reason=f"the new version was not ready by the deadline: {seen}{detail}")
        return Action(WAIT, at=poll)
    if view.phase == Phase.ANALYSE:
        if view.analysis_until is not None and now < view.analysis_until:
            return Action(WAIT, at=view.analysis_until)
        if status is None:
            return Action(ROLLBACK, reason="the new version is no longer running on the target")
        figures = health(view.baseline, status)
        if view.step.analysis == 0:
            return Action(PASSED, figures=figures, then=after_step(view.steps, view.step_index))
        healthy, reasons = judge(figures, view.thresholds)
        if healthy is False:
            return Action(ROLLBACK, reason="health thresholds crossed: " + "; ".join(reasons), figures=figures)
        if healthy is None:
            return Action(UNJUDGED, reason="; ".join(reasons), figures=figures)
        return Action(PASSED, figures=figures, then=after_step(view.steps, view.step_index))
    return Action(WAIT, at=poll)
