"""Deploy the demo's approved versions to a local target for production, once its releases are in.

    python manage.py demo_deployments [--wait 300]

The run command starts it after ``demo_releases``. Acting as the demo's people would, through the
services only, it:

- adds the local target ``local`` serving production (admin);
- registers two more fraud-detector versions (alice, the model's author, as its CI would): v2, the same
  logistic regression more strongly regularised, and v3, retrained without ``distance_km``, a feature
  the payment switch still sends; each is requested for production by priya and approved by bob (four
  eyes: neither wrote it) once the worker has verified it;
- deploys (dave, release manager) credit-scoring v2 and fraud-detector v1 directly: both **succeed**;
- then fraud-detector v3 as a canary at 25 %: the callers send four features, the model takes three,
  every request it gets is refused, and the engine **rolls it back by itself** on its error rate;
- then fraud-detector v2 as a canary at 25 % whose step waits for a person once its analysis passed:
  it stays **paused**, 75/25 on the router (resuming promotes it; or halt or roll it back).

Nothing generates traffic on a target by itself, and a canary is judged on the requests it got, so while
it waits the command is the models' callers: a few dozen V2 requests a second through the target's
router (rows drawn from each model's generating rule, four features each), for as long as a rollout it
waits for is under way, never past ``--wait``.

It waits (up to ``--wait`` seconds) for demo_releases' approvals, for the new versions' verification
and for each rollout, printing each move; it exits non-zero, saying what it waited for, when a rollout
ends otherwise or the time runs out. Idempotent: what exists is left alone (a rollout already started
is only waited for while it moves; one a person has since moved on is reported as it is).
"""

from __future__ import annotations

import http.client
import io
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.principals import principal_for_user
from apps.audit import context
from apps.demo import artifacts
from apps.deployments import governance
from apps.deployments import services as deployments
from apps.deployments.choices import DeploymentState, Strategy
from apps.deployments.models import Deployment, DeploymentTarget
from apps.registry import services as registry
from apps.registry.choices import VersionStatus
from apps.registry.models import Dataset, ModelVersion
from apps.releases import services as releases
from apps.releases.choices import ReleaseStatus
from apps.releases.models import ReleaseRequest

from .demo_load import EVALUATION_ROWS, MODELS, TRAINING_ROWS

TARGET = "local"
ENVIRONMENT = "production"
CREDIT, FRAUD = "credit-scoring", "fraud-detector"
DROPPED = "distance_km"  # the feature fraud-detector v3 was retrained without

# fraud-detector versions this command registers, found again by their source commit
NEW_VERSIONS = {
    "waits": {
        "commit": "de7de91070000000000000000000000000000a02",
        "regularization": 0.1,
        "description": "onnx model trained on fraud-detector-training, more strongly regularised (C=0.1)",
        "justification": "Steadier scores on rare merchants; canary first, promote after a look at the split.",
        "change_reference": "CHG-2131",
    },
    "rolls_back": {
        "commit": "de7de91070000000000000000000000000000a03",
        "drop": DROPPED,
        "description": f"onnx model trained on fraud-detector-training without {DROPPED} (three features)",
        "justification": f"Drop {DROPPED}, which the new terminals will stop sending.",
        "change_reference": "CHG-2132",
    },
}

# Each rollout: a short analysis window, judged on the command's traffic (rows of four features).
DIRECT = {"strategy": Strategy.DIRECT, "steps": [{"weight": 100, "pause": 0, "analysis": 5}]}
CANARY_ROLLS_BACK = {
    "strategy": Strategy.CANARY,
    "steps": [{"weight": 25, "pause": 0, "analysis": 8}, {"weight": 50, "pause": 0, "analysis": 8}],
    "thresholds": {"min_requests": 10},
}
CANARY_WAITS = {
    "strategy": Strategy.CANARY,
    "steps": [{"weight": 25, "pause": None, "analysis": 8}],  # resuming promotes it
    "thresholds": {"min_requests": 10},
}
MOVING = (DeploymentState.PENDING, DeploymentState.PROGRESSING, DeploymentState.ROLLING_BACK)
REQUESTS_PER_SECOND = 40


@dataclass
class Rollout:
    """One rollout the demo makes: which release, how, after which other one, and the state it must reach."""

    label: str
    model: str
    number: int
    options: dict
    expect: str
    reason: str
    after: str = ""  # the label of the rollout that must be finished first
    release: ReleaseRequest | None = None
    deployment: Deployment | None = None
    judged: bool = False  # started by this run, or still moving when it first looked: it must reach ``expect``
    last: str = ""
    refused: str = ""  # why governance would not let it start yet


def _rollouts(new: dict[str, int]) -> list[Rollout]:
    return [
        Rollout("credit-scoring v2", CREDIT, 2, DIRECT, DeploymentState.SUCCEEDED, "CHG-2093: replace v1"),
        Rollout("fraud-detector v1", FRAUD, 1, DIRECT, DeploymentState.SUCCEEDED, "CHG-2107: all regions"),
        Rollout(
            f"fraud-detector v{new['rolls_back']}",
            FRAUD,
            new["rolls_back"],
            CANARY_ROLLS_BACK,
            DeploymentState.ROLLED_BACK,
            f"CHG-2132: without {DROPPED}",
            after="fraud-detector v1",
        ),
        Rollout(
            f"fraud-detector v{new['waits']}",
            FRAUD,
            new["waits"],
            CANARY_WAITS,
            DeploymentState.PAUSED,
            "CHG-2131: canary, promoted after a look",
            after=f"fraud-detector v{new['rolls_back']}",
        ),
    ]


class Command(BaseCommand):
    help = "Deploy the demo's approved versions to a local production target (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--wait", type=float, default=300, help="seconds to wait in all (default 300)")

    def handle(self, *args, **options):
        context.update(source="cli")
        started = time.monotonic()
        self.deadline = started + options["wait"]
        people = {u.username: principal_for_user(u) for u in User.objects.filter(username__in=PEOPLE)}
        missing = sorted(set(PEOPLE) - set(people))
        if missing:
            raise CommandError(f"demo deployments: run demo_load first (no {', '.join(missing)})")
        self.people = people
        self._wait("demo_releases' approvals for production", _releases_in)
        target = self._target()
        numbers = {key: self._version(spec) for key, spec in NEW_VERSIONS.items()}
        for key, spec in NEW_VERSIONS.items():
            self._release(spec, numbers[key])
        plan = _rollouts(numbers)
        for rollout in plan:
            rollout.release = _approved(rollout.model, rollout.number)
            rollout.deployment = (
                Deployment.objects.filter(release=rollout.release, target=target).order_by("-created_at").first()
            )
        traffic = Traffic(target)
        try:
            self._drive(plan, target, traffic)
        finally:
            traffic.stop()
        if traffic.sent:
            statuses = ", ".join(f"{n} x {code or 'no answer'}" for code, n in sorted(traffic.sent.items()))
            self.stdout.write(f"demo traffic: {sum(traffic.sent.values())} request(s) through the router ({statuses})")
        self.stdout.write(self.style.SUCCESS(f"demo deployments: in place after {time.monotonic() - started:.0f} s"))

    # --- what the demo's people do -----------------------------------------------------------------------

    def _target(self) -> DeploymentTarget:
        target = DeploymentTarget.objects.filter(name=TARGET).first()
        if target is not None:
            self.stdout.write(f"target {TARGET}: already there ({target.environment.name})")
            return target
        target = deployments.target_create(
            actor=self.people["admin"],
            name=TARGET,
            kind="local",
            environment=ENVIRONMENT,
            description="Serving processes on this machine behind one router on 127.0.0.1 (the demo's production).",
        )
        self.stdout.write(f"target {TARGET}: added for {ENVIRONMENT}")
        return target

    def _version(self, spec: dict) -> int:
        """Register the fraud-detector version ``spec`` describes (once), as its author; wait until verified."""
        version = ModelVersion.objects.filter(model__name=FRAUD, source_commit=spec["commit"]).first()
        if version is None:
            version = self._register(spec)
            self.stdout.write(f"{FRAUD} v{version.number}: registered ({spec['description']})")
        else:
            self.stdout.write(f"{FRAUD} v{version.number}: already there")
        self._wait(
            f"{FRAUD} v{version.number}'s verification",
            lambda: (
                ModelVersion.objects.filter(pk=version.pk).exclude(status=VersionStatus.PENDING_VERIFICATION).exists()
            ),
        )
        version.refresh_from_db()
        if version.status != VersionStatus.READY:
            raise CommandError(f"demo deployments: {FRAUD} v{version.number} is {version.status}, not ready")
        return version.number

    def _register(self, spec: dict) -> ModelVersion:
        index = next(i for i, m in enumerate(MODELS) if m["name"] == FRAUD)
        model, seed = MODELS[index], 100 + index  # as demo_load drew fraud-detector's rows
        rule = artifacts.make_rule(seed, model["columns"], **model.get("rule", {}))
        training, held_out = artifacts.draw(rule, seed, TRAINING_ROWS), artifacts.draw(rule, seed + 1, EVALUATION_ROWS)
        if "drop" in spec:
            training, held_out = artifacts.without(training, spec["drop"]), artifacts.without(held_out, spec["drop"])
        result = artifacts.train("onnx", training, held_out, seed, regularization=spec.get("regularization", 1.0))
        dataset = Dataset.objects.get(name=f"{FRAUD}-training", source__isnull=True)
        # No evaluation dataset is linked: demo_evidence asks for reports on versions that have one, and a
        # new report would be a new basis for the decision (the approvals given here would no longer count).
        return registry.version_create(
            actor=self.people[model["author"]],
            model_name=FRAUD,
            artifact=io.BytesIO(result.artifact),
            format="onnx",
            description=spec["description"],
            metrics=result.metrics,
            source_repository=f"https://git.example.com/{model['owner_team']}/{FRAUD}",
            source_commit=spec["commit"],
            ci_run_url=f"https://ci.example.com/{FRAUD}/runs/{spec['commit'][-4:]}",
            training_dataset_ids=[dataset.pk],
            model_card={
                "intended_use": model["intended_use"],
                "limitations": model["limitations"],
                "performance": f"AUC {result.metrics['auc']:.3f}, accuracy {result.metrics['accuracy']:.3f} "
                f"on {EVALUATION_ROWS} held-out rows",
                "human_oversight": "Every decision is reviewed by a trained analyst.",
            },
        )

    def _release(self, spec: dict, number: int) -> None:
        """priya asks for production, bob approves (neither wrote the version); once."""
        release = (
            ReleaseRequest.objects.filter(
                version__model__name=FRAUD, version__number=number, environment__name=ENVIRONMENT
            )
            .order_by("-created_at")
            .first()
        )
        if release is None:
            release = releases.release_request_create(
                actor=self.people["priya"],
                model_name=FRAUD,
                number=number,
                environment=ENVIRONMENT,
                justification=spec["justification"],
                change_reference=spec["change_reference"],
            )
            self.stdout.write(f"{FRAUD} v{number} to {ENVIRONMENT}: {release.status}")
        if release.status == ReleaseStatus.PENDING_APPROVAL and not release.approvals.exists():
            releases.approval_decide(
                actor=self.people["bob"],
                release_id=release.public_id,
                decision="approve",
                comment="Offline evaluation reviewed; roll it out as a canary.",
            )
            release.refresh_from_db()
            self.stdout.write(f"{FRAUD} v{number} to {ENVIRONMENT}: {release.status} (bob)")
        if release.status != ReleaseStatus.APPROVED:
            raise CommandError(
                f"demo deployments: {FRAUD} v{number} to {ENVIRONMENT} is {release.status}, not approved: "
                f"{release.decision.get('violations') or release.decision.get('missing_evidence')}"
            )

    # --- the rollouts --------------------------------------------------------------------------------------

    def _drive(self, plan: list[Rollout], target: DeploymentTarget, traffic: Traffic) -> None:
        by_label = {r.label: r for r in plan}
        for rollout in plan:
            if rollout.deployment is not None:
                rollout.judged = rollout.deployment.state in MOVING
                self._report(rollout, prefix="already there: ")
        while True:
            waiting = []
            for rollout in plan:
                if rollout.deployment is None:
                    before = by_label.get(rollout.after)
                    if before is None or (before.deployment is not None and before.deployment.state not in MOVING):
                        self._start(rollout, target)
                    if rollout.deployment is None:
                        why = f" (governance: {rollout.refused})" if rollout.refused else ""
                        waiting.append(f"{rollout.label} to start{why}")
                        continue
                rollout.deployment.refresh_from_db()
                self._report(rollout)
                state = rollout.deployment.state
                if state == rollout.expect and rollout.deployment.converged:
                    continue
                if state in MOVING or (state == rollout.expect and not rollout.deployment.converged):
                    waiting.append(f"{rollout.label} to be {rollout.expect.replace('_', ' ')}")
                    continue
                if rollout.judged:
                    raise CommandError(
                        f"demo deployments: {rollout.label} on {TARGET} is {state.replace('_', ' ')}, not "
                        f"{rollout.expect.replace('_', ' ')}: {rollout.deployment.message}"
                    )
                # a rollout of an earlier run that a person has moved on since: reported, left alone
            if not waiting:
                return
            traffic.start()
            if time.monotonic() >= self.deadline:
                raise CommandError(f"demo deployments: gave up waiting for {'; '.join(waiting)} (see var/worker.log)")
            time.sleep(0.5)

    def _start(self, rollout: Rollout, target: DeploymentTarget) -> None:
        """Start the rollout once governance would let it (the worker stores the decision the gate reads)."""
        release = ReleaseRequest.objects.select_related("version", "environment").prefetch_related("approvals")
        release = release.get(pk=rollout.release.pk)
        rollout.refused = governance.refusal(
            release=release, version=release.version, target=target, now=timezone.now()
        )
        if rollout.refused:
            return  # the reacting jobs have not stored the decision yet: look again on the next pass
        rollout.deployment = deployments.deployment_start(
            actor=self.people["dave"],
            release_id=release.public_id,
            target=TARGET,
            reason=rollout.reason,
            **rollout.options,
        )
        rollout.judged = True
        self.stdout.write(f"{rollout.label}: {rollout.options['strategy']} rollout to {TARGET} started")

    def _report(self, rollout: Rollout, prefix: str = "") -> None:
        d = rollout.deployment
        line = f"{d.state.replace('_', ' ')}, step {d.step_index + 1} of {len(d.steps)} ({d.phase}): {d.message}"
        if line != rollout.last:
            rollout.last = line
            self.stdout.write(f"{rollout.label} on {TARGET}: {prefix}{line}")

    def _wait(self, what: str, done) -> None:
        while not done():
            if time.monotonic() >= self.deadline:
                raise CommandError(f"demo deployments: gave up waiting for {what}")
            time.sleep(1)


PEOPLE = ("admin", "alice", "priya", "bob", "dave")


def _approved(model: str, number: int) -> ReleaseRequest:
    release = (
        ReleaseRequest.objects.filter(
            version__model__name=model,
            version__number=number,
            environment__name=ENVIRONMENT,
            status=ReleaseStatus.APPROVED,
        )
        .order_by("-created_at")
        .first()
    )
    if release is None:
        raise CommandError(f"demo deployments: {model} v{number} has no approved release for {ENVIRONMENT}")
    return release


def _releases_in() -> bool:
    """demo_releases' production approvals of credit-scoring v2 and fraud-detector v1 are there."""
    approved = ReleaseRequest.objects.filter(environment__name=ENVIRONMENT, status=ReleaseStatus.APPROVED)
    return all(
        approved.filter(version__model__name=m, version__number=1 if m == FRAUD else 2).exists()
        for m in (CREDIT, FRAUD)
    )


class Traffic:
    """The models' callers: V2 requests of four features through the local target's router, in a thread.

    Each demo model's service gets rows drawn from its generating rule, one row a request, about
    ``REQUESTS_PER_SECOND`` in all. Answers are only counted by status (a service not deployed yet is a 404;
    a router not started yet, no answer). The router's port is the one its state folder records
    (``router.json``, docs/targets-local.md).
    """

    def __init__(self, target: DeploymentTarget) -> None:
        name = (target.settings or {}).get("name") or target.name
        self.state = Path((target.settings or {}).get("state_dir") or Path(settings.VAR_DIR) / "deployments" / name)
        self.sent: Counter[int] = Counter()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rows = {spec["name"]: _rows(i, spec) for i, spec in enumerate(MODELS) if spec["name"] in (CREDIT, FRAUD)}

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="demo-traffic", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _port(self) -> int:
        try:
            return int(json.loads((self.state / "router.json").read_text())["port"])
        except (OSError, ValueError, KeyError):
            return 0

    def _run(self) -> None:
        conn, port, n = None, 0, 0
        pause = 1 / REQUESTS_PER_SECOND
        while not self._stop.wait(pause):
            if conn is None:
                port = self._port()
                if not port:
                    continue
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            service = list(self._rows)[n % len(self._rows)]
            rows = self._rows[service]
            row = rows[(n // len(self._rows)) % len(rows)]
            n += 1
            body = {"inputs": [{"name": "input", "shape": [1, len(row)], "datatype": "FP32", "data": row}]}
            try:
                conn.request(
                    "POST", f"/v2/models/{service}/infer", json.dumps(body), {"Content-Type": "application/json"}
                )
                response = conn.getresponse()
                response.read()
                self.sent[response.status] += 1
            except (OSError, http.client.HTTPException):
                self.sent[0] += 1
                conn.close()
                conn = None


def _rows(index: int, spec: dict) -> list[list[float]]:
    """Rows a caller of this model sends: fresh draws of its generating rule (as demo_load's seeds)."""
    seed = 100 + index
    rule = artifacts.make_rule(seed, spec["columns"], **spec.get("rule", {}))
    return [[float(v) for v in row] for row in artifacts.draw(rule, seed + 7, 256).X]
