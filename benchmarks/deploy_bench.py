"""Deployments on a real Kubernetes API server: how soon a decided step reaches the server, and what one
reconciler pass over many deployments costs.

    .venv/bin/python benchmarks/deploy_bench.py [--steps 24] [--deployments 1000] [--passes 5]

Needs the test API server's connection (``ASSAY_TEST_KUBE_SERVER``, ``ASSAY_TEST_KUBE_CA_FILE``,
``ASSAY_TEST_KUBE_TOKEN``: ``eval "$(bash scripts/services/kube.sh)"``) and, by default, PostgreSQL: the
benchmark's own database (``--database-url``, default ``assay_deploy_bench``) is created when missing and
migrated on every run; ``--database-url sqlite:///path`` runs on SQLite instead (the smoke test does).

1. **Step latency.** An approved release's version is deployed to a Kubernetes target (a namespace of its own)
   through the services, as a release manager would; then canary rollouts (``--weights``, each step with no
   analysis window or pause, then the promotion) replace it version after version until ``--steps`` steps were
   applied. A step's latency runs from the moment the engine *decides* it (``apps.deployments.rollout.decide``
   returns ``apply`` in ``worker/rollouts.py``; the benchmark wraps that function and notes the time) to the
   moment the API server holds the new state: the first watch event (a new ``resourceVersion``) of the new
   version's Deployment carrying the step's weight (``anchor``: of the service's plan ConfigMap, which the
   driver writes first). Between them: the governance re-check (database reads, the artifact re-hashed), the
   plan and the driver's writes. The jobs are run twice: in this process (``deployments_enqueue_due`` then
   ``worker.runner.run_queued``, what a worker's tick and drain do), and by a real ``python -m worker --beat``
   (the broker-less worker polling the job table, its tick every ``--tick`` seconds), where the figure
   ``job queued -> at server`` adds the queueing: from the advance job's row to the step at the server. The
   benchmark plays the kubelet for the namespace (binds the pods and reports them ready), so the
   controller-manager marks the Deployments available as on a cluster.

2. **Reconciler pass.** ``--deployments`` models, each with an approved release and a serving deployment,
   spread over ``--namespaces`` targets (one namespace each). The rows are made through the services
   (model, release, approval, ``deployment_start``); the version rows and their stored bytes are written
   directly, as the registry's verification would leave them, and the deployments are brought to
   ``succeeded`` by applying their plan with the target's driver and recording what the engine's promotion
   records (the engine's own path is what part 1 measures). The Services are left out unless
   ``--with-services`` (each takes a cluster IP; the test server's service range, a /16, holds them); without
   them the reconciler still asks for each one, so its requests are a cluster's. Seeding
   runs every job the services queue (their reactions: about 0.1 s each, several per release), so 1,000 take
   some ten minutes the first time. The rows are kept and reused by the next run;
   the namespaces are made afresh and deleted at the end (``--keep`` keeps them). Then ``reconcile_all()`` runs
   ``--passes`` times: seconds per pass (the first, cold, apart), the API requests it sent and the SQL queries
   it ran, and the findings it recorded (0 when everything runs as deployed).

Figures are printed, never asserted; the machine's load and speed index are printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import machine  # noqa: E402

KUBE_ENV = ("ASSAY_TEST_KUBE_SERVER", "ASSAY_TEST_KUBE_CA_FILE", "ASSAY_TEST_KUBE_TOKEN")
IMAGES = {"onnx": "registry.example/assay/onnx-server:1.4", "skops": "registry.example/assay/skops-server:1.4"}
NODE = "assay-bench-node"
TEAM = "deploy-bench"
ROLLOUT_MODEL = "deploy-bench-rollout"
RECON_PREFIX = "deploy-bench-m"  # the reconciler's models: deploy-bench-m00000, ...
MERGE_PATCH = "application/strategic-merge-patch+json"
ANNOTATION_WEIGHT = "assay.dev/weight"
ANNOTATION_VERSION_ID = "assay.dev/version-id"


def log(message: str) -> None:
    print(f"==> {message}", flush=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(values: list[float]) -> str:
    if not values:
        return "n=0"
    return (
        f"n={len(values):<4} p50 {statistics.median(values):8.1f} ms  p95 {pct(values, 0.95):8.1f} ms  "
        f"max {max(values):8.1f} ms"
    )


# ---------------------------------------------------------------------------------------------
# The environment, the database


def environment(args: argparse.Namespace) -> dict:
    """What this process and the worker it starts share (set before Django is set up)."""
    work = Path(args.work)
    (work / "var").mkdir(parents=True, exist_ok=True)
    return {
        "DJANGO_SETTINGS_MODULE": "controlplane.settings",
        "DJANGO_DEBUG": "0",
        # stable across runs: the targets' credentials kept in the database are sealed with a key derived from it
        "DJANGO_SECRET_KEY": "deploy-bench-" + "k" * 40,
        "DATABASE_URL": args.database_url,
        "CELERY_BROKER_URL": "database://",
        "ASSAY_CACHE_URL": args.cache_url,
        "ASSAY_VAR_DIR": str(work / "var"),
        "ASSAY_STORAGE_URL": (work / "artifacts").as_uri(),
        "ASSAY_LOG_LEVEL": "WARNING",
        "ASSAY_DEPLOY_POLL_SECONDS": str(args.poll),
        "ASSAY_DEPLOY_TICK_SECONDS": str(args.tick),
        "ASSAY_DEPLOY_READY_TIMEOUT_SECONDS": "120",
        # the worker's beat would reconcile the reconciler's targets during the step measurements
        "ASSAY_DEPLOY_RECONCILE_SECONDS": "86400",
        "ASSAY_WORKER_POLL_SECONDS": "0.5",
        "PYTHONPATH": str(ROOT),
    }


def prepare_database(args: argparse.Namespace, env: dict) -> None:
    """Create the PostgreSQL database when missing (kept between runs), then migrate it."""
    url = args.database_url
    if url.startswith(("postgres://", "postgresql://")):
        import psycopg

        admin, name = url.rsplit("/", 1)[0] + "/postgres", url.rsplit("/", 1)[1].split("?")[0]
        with psycopg.connect(admin, autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
                log(f"creating database {name}")
                conn.execute(f'CREATE DATABASE "{name}"')
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v0"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"migrate failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    log(f"database migrated in {time.monotonic() - started:.1f} s ({url.split('@')[-1]})")


# ---------------------------------------------------------------------------------------------
# The Kubernetes side: an admin client, namespaces, a stand-in kubelet, a watch


class Kube:
    """The benchmark's own admin client of the test API server (the driver builds its own from the target)."""

    def __init__(self) -> None:
        from kubernetes import client

        self.server = os.environ["ASSAY_TEST_KUBE_SERVER"]
        self.token = os.environ["ASSAY_TEST_KUBE_TOKEN"]
        self.ca_pem = Path(os.environ["ASSAY_TEST_KUBE_CA_FILE"]).read_text()
        configuration = client.Configuration()
        configuration.host = self.server
        configuration.ssl_ca_cert = os.environ["ASSAY_TEST_KUBE_CA_FILE"]
        configuration.api_key = {"authorization": f"Bearer {self.token}"}
        self.api = client.ApiClient(configuration)
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)

    def target_settings(self, namespace: str) -> tuple[dict, dict]:
        return (
            {"auth": "token", "server": self.server, "namespace": namespace, "images": IMAGES},
            {"token": self.token, "ca_cert": self.ca_pem},
        )

    def ensure_node(self) -> None:
        from kubernetes.client.rest import ApiException

        body = {
            "metadata": {"name": NODE, "labels": {"kubernetes.io/hostname": NODE}},
            "status": {
                "capacity": {"cpu": "64", "memory": "256Gi", "pods": "2000"},
                "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "2000"},
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "bench"}],
            },
        }
        try:
            self.core.create_node(body, _preload_content=False)
        except ApiException as exc:
            if exc.status != 409:
                raise

    def make_namespace(self, name: str) -> None:
        """A fresh namespace (one left by an interrupted run is deleted first), with its default account."""
        from kubernetes.client.rest import ApiException

        self.delete_namespace(name)
        deadline = time.monotonic() + 120
        while True:
            try:
                self.core.create_namespace({"metadata": {"name": name}}, _preload_content=False)
                break
            except ApiException as exc:
                if exc.status != 409 or time.monotonic() > deadline:  # still terminating
                    raise
                time.sleep(0.5)
        while time.monotonic() < deadline:
            try:
                if self.core.read_namespaced_service_account("default", name).secrets:
                    return
            except ApiException:
                pass
            time.sleep(0.2)
        raise SystemExit(f"namespace {name}: no default service account after 120 s")

    def delete_namespace(self, name: str, *, wait: bool = True) -> None:
        """Delete the namespace, confirming its bound pods' deletion as their kubelet would."""
        from kubernetes.client.rest import ApiException

        try:
            self.core.delete_namespace(name, _preload_content=False)
        except ApiException as exc:
            if exc.status == 404:
                return
            raise
        deadline = time.monotonic() + 180
        while wait and time.monotonic() < deadline:
            try:
                self.core.read_namespace(name)
            except ApiException as exc:
                if exc.status == 404:
                    return
                raise
            for pod in self.core.list_namespaced_pod(name).items:
                if pod.spec.node_name:
                    try:
                        self.core.delete_namespaced_pod(
                            pod.metadata.name, name, grace_period_seconds=0, _preload_content=False
                        )
                    except ApiException as exc:
                        if exc.status != 404:
                            raise
            time.sleep(0.5)


class Kubelet(threading.Thread):
    """Plays the scheduler and the kubelet for one namespace: binds each pending pod to the node and reports it
    running and ready, so the controller-manager counts the Deployment's replicas available."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        super().__init__(name="bench-kubelet", daemon=True)
        self.kube, self.namespace = kube, namespace
        self.stop = threading.Event()
        self.seen: set[str] = set()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.once()
            except Exception as exc:  # noqa: BLE001 - a pod deleted under us; look again
                log(f"kubelet: {exc.__class__.__name__}")
            self.stop.wait(0.1)

    def once(self) -> None:
        core = self.kube.core
        for pod in core.list_namespaced_pod(self.namespace).items:
            name = pod.metadata.name
            if pod.metadata.deletion_timestamp:
                if pod.spec.node_name:
                    core.delete_namespaced_pod(name, self.namespace, grace_period_seconds=0, _preload_content=False)
                continue
            if name in self.seen:
                continue
            if not pod.spec.node_name:
                binding = {
                    "apiVersion": "v1",
                    "kind": "Binding",
                    "metadata": {"name": name},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": NODE},
                }
                core.create_namespaced_binding(self.namespace, binding, _preload_content=False)
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            ip = f"10.244.{len(self.seen) // 250 % 250}.{len(self.seen) % 250 + 2}"
            ready = [{"type": t, "status": "True", "lastTransitionTime": now} for t in ("PodScheduled", "Ready")]
            status = {
                "status": {
                    "phase": "Running",
                    "startTime": now,
                    "podIP": ip,
                    "podIPs": [{"ip": ip}],
                    "conditions": ready + [{"type": "ContainersReady", "status": "True", "lastTransitionTime": now}],
                    "containerStatuses": [
                        {
                            "name": box.name,
                            "image": box.image,
                            "imageID": "",
                            "ready": True,
                            "started": True,
                            "restartCount": 0,
                            "state": {"running": {"startedAt": now}},
                        }
                        for box in pod.spec.containers
                    ],
                }
            }
            core.patch_namespaced_pod_status(name, self.namespace, status, _content_type=MERGE_PATCH)
            self.seen.add(name)


class Watcher(threading.Thread):
    """Notes when each new resourceVersion of the namespace's Deployments (or ConfigMaps) reaches this watch."""

    def __init__(self, kube: Kube, namespace: str, kind: str) -> None:
        super().__init__(name=f"bench-watch-{kind}", daemon=True)
        self.kube, self.namespace, self.kind = kube, namespace, kind
        self.events: list[tuple[float, str, dict]] = []  # (time.time(), name, annotations | data)
        self.started = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        from kubernetes import watch

        lister = (
            self.kube.apps.list_namespaced_deployment
            if self.kind == "deployment"
            else self.kube.core.list_namespaced_config_map
        )
        version = lister(self.namespace).metadata.resource_version
        self.started.set()
        while not self.stop.is_set():
            stream = watch.Watch()
            for event in stream.stream(lister, self.namespace, resource_version=version, timeout_seconds=5):
                at = time.time()
                obj = event["object"]
                version = obj.metadata.resource_version
                if event["type"] in ("ADDED", "MODIFIED"):
                    payload = obj.metadata.annotations if self.kind == "deployment" else obj.data
                    self.events.append((at, obj.metadata.name, dict(payload or {})))
                if self.stop.is_set():
                    stream.stop()

    def changed(self, after: float, match, key=None) -> float | None:
        """When an object first came to match (its previous version did not; with ``key``: its key changed and
        it matches), at or after ``after``."""
        previous: dict[str, dict] = {}
        for at, name, payload in list(self.events):
            before, previous[name] = previous.get(name), payload
            if at < after or not match(name, payload):
                continue
            if key is not None:
                if before is None or key(before) != key(payload):
                    return at
            elif before is None or not match(name, before):
                return at
        return None


# ---------------------------------------------------------------------------------------------
# The Assay side: people, a model's versions and approved releases, through the services


class Actors:
    """The people of the run: an admin, a requester, a reviewer and a release manager of the benchmark's team."""

    def __init__(self) -> None:
        from apps.accounts import services as accounts
        from apps.accounts.models import Team, User
        from apps.accounts.principals import principal_for_user
        from apps.core.principals import Principal
        from apps.rbac import services as rbac
        from apps.rbac.models import Environment

        system = Principal.system("assay-deploy-bench")
        Environment.objects.get_or_create(name="staging", defaults={"production": False})
        self.team = Team.objects.filter(name=TEAM).first() or accounts.team_create(actor=system, name=TEAM)
        people = {}
        for name, role, scoped in (
            ("bench-admin", "admin", False),
            ("bench-author", "contributor", True),
            ("bench-requester", "contributor", True),
            ("bench-reviewer", "reviewer", True),
            ("bench-manager", "release_manager", False),
        ):
            user = User.objects.filter(username=name).first()
            if user is None:
                user = accounts.user_create(actor=system, username=name, password=None)
                rbac.role_grant(actor=system, subject=user, role=role, team=self.team if scoped else None)
            people[name] = user
        self.author = people["bench-author"]
        self.admin, self.requester, self.reviewer, self.manager = (
            principal_for_user(people[n]) for n in ("bench-admin", "bench-requester", "bench-reviewer", "bench-manager")
        )


def run_jobs() -> int:
    """Run every queued job here, as a worker's drains do (one drain stops after a while), until none is left;
    how many ran."""
    from worker.runner import run_queued

    total = 0
    while ran := len(run_queued()):
        total += ran
    return total


def ensure_model(actors: Actors, name: str):
    from apps.registry import services as registry
    from apps.registry.choices import RiskTier
    from apps.registry.models import RegisteredModel

    return RegisteredModel.objects.filter(name=name).first() or registry.model_create(
        actor=actors.admin, name=name, owner_team=actors.team, risk_tier=RiskTier.MINIMAL, data_categories=[]
    )


def approved_release(actors: Actors, model, number: int, *, refresh: bool = True):
    """A ready version of ``model`` whose bytes are stored, and its approved staging release (made once).

    The version row is written as the registry's verification leaves it (the bytes stored, their sha256); the
    release is requested and approved through the services, and its stored gate decision brought up to date.
    """
    import io

    from apps.core.storage import get_storage
    from apps.registry.models import ModelVersion
    from apps.releases import services as releases
    from apps.releases.gate_decisions import gate_decisions_refresh
    from apps.releases.models import ReleaseRequest

    version = ModelVersion.objects.filter(model=model, number=number).first()
    if version is None:
        payload = f"deploy-bench artifact of {model.name} v{number} {uuid.uuid4().hex}".encode()
        stored = get_storage().save(io.BytesIO(payload), kind="artifacts")
        version = ModelVersion.objects.create(
            model=model,
            number=number,
            status="ready",
            format="onnx",
            created_by=actors.author,
            artifact_uri=stored.key,
            sha256=stored.sha256,
            size=stored.size,
        )
        model.last_version_number = max(model.last_version_number or 0, number)
        model.save(update_fields=["last_version_number"])
    release = ReleaseRequest.objects.filter(version=version, status="approved").first()
    if release is None:
        release = releases.release_request_create(
            actor=actors.requester,
            model_name=model.name,
            number=number,
            environment="staging",
            justification="deploy benchmark",
        )
        releases.approval_decide(actor=actors.reviewer, release_id=release.public_id, decision="approve")
        if refresh:
            run_jobs()
            gate_decisions_refresh(version_ids=[version.pk], reason="deploy-bench")
        release.refresh_from_db()
    return release


def ensure_target(actors: Actors, kube: Kube, name: str, namespace: str):
    from apps.deployments import services
    from apps.deployments.models import DeploymentTarget

    target = DeploymentTarget.objects.filter(name=name).first()
    if target is None:
        settings, credentials = kube.target_settings(namespace)
        target = services.target_create(
            actor=actors.admin,
            name=name,
            kind="kubernetes",
            environment="staging",
            settings=settings,
            credentials=credentials,
        )
    return target


# ---------------------------------------------------------------------------------------------
# Part 1: from a step's decision to the API server


class Decisions:
    """Wraps ``apps.deployments.rollout.decide``: the time of each ``apply`` it returns, and for which step."""

    def __init__(self, sink=None) -> None:
        from apps.deployments import rollout

        self.rollout = rollout
        self.original = rollout.decide
        self.seen: list[dict] = []
        self.sink = sink

    def install(self) -> None:
        original, rollout = self.original, self.rollout

        def decide(view, observed=None):
            action = original(view, observed)
            if action.kind == rollout.APPLY:
                row = {
                    "at": time.time(),
                    "version_id": view.version_id,
                    "phase": str(view.phase),
                    "step": view.step_index,
                }
                self.seen.append(row)
                if self.sink is not None:
                    with open(self.sink, "a", encoding="ascii") as out:
                        out.write(json.dumps(row) + "\n")
            return action

        rollout.decide = decide

    def uninstall(self) -> None:
        self.rollout.decide = self.original


def expected_weight(deployment, row: dict) -> int:
    """The new version's weight the decided step asks for."""
    if row["phase"] == "promote" or deployment.replaces_id is None:
        return 100
    return int(deployment.steps[row["step"]]["weight"])


class Rollouts:
    """Canary rollouts of one model on one target, one version after another."""

    def __init__(self, args, actors: Actors, kube: Kube, namespace: str, label: str) -> None:
        self.args, self.actors, self.kube, self.namespace = args, actors, kube, namespace
        self.model = ensure_model(actors, ROLLOUT_MODEL)
        self.target = ensure_target(actors, kube, f"deploy-bench-{label}", namespace)
        self._retarget()

    def _retarget(self) -> None:
        """The namespace is fresh each run: point the kept target at it, and retire what served there before."""
        from apps.deployments import services
        from apps.deployments.choices import ACTIVE
        from apps.deployments.models import Deployment

        settings, credentials = self.kube.target_settings(self.namespace)
        if self.target.settings.get("namespace") != self.namespace or not self.target.enabled:
            services.target_update(
                actor=self.actors.admin,
                target_id=self.target.public_id,
                settings=settings,
                credentials=credentials,
                enabled=True,
            )
            self.target.refresh_from_db()
        # What served there in an earlier run is gone with its namespace; an undeploy retires it (its convergence
        # removes nothing, the namespace being empty), so this run starts with a first deployment.
        # An interrupted run's rollout is rolled back first.
        for old in Deployment.objects.filter(target=self.target, state__in=ACTIVE).exclude(state="rolling_back"):
            services.deployment_rollback(actor=self.actors.manager, deployment_id=old.public_id, reason="bench re-run")
        self.drive_all()
        for old in Deployment.objects.filter(target=self.target, state="succeeded"):
            services.deployment_undeploy(actor=self.actors.manager, deployment_id=old.public_id, reason="bench re-run")
        self.drive_all()

    def drive_all(self, timeout: float = 120) -> None:
        """In this process: tick and drain until no rollout of the target moves or converges."""
        from apps.deployments import services
        from apps.deployments.models import Deployment

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            moving = (
                Deployment.objects.filter(target=self.target).filter(state__in=("pending", "progressing")).exists()
                or Deployment.objects.filter(target=self.target, converged=False).exists()
            )
            if not moving:
                return
            services.deployments_enqueue_due()
            run_jobs()
            time.sleep(0.05)
        raise SystemExit(f"rollouts on {self.target.name} did not finish in {timeout:.0f} s")

    def retire(self) -> None:
        """Disable the target once measured: its namespace is deleted, and the reconciler is to skip it."""
        from apps.deployments import services

        services.target_update(actor=self.actors.admin, target_id=self.target.public_id, enabled=False)

    def start(self, number: int, weights: list[int]):
        from apps.deployments import services
        from apps.registry.models import ModelVersion

        release = approved_release(self.actors, self.model, number)
        if ModelVersion.objects.filter(model=self.model).count() < number:
            raise SystemExit("version numbers out of order")
        if weights:
            steps = [{"weight": w, "pause": 0, "analysis": 0} for w in weights]
            strategy = "canary"
        else:
            steps, strategy = [{"weight": 100, "pause": 0, "analysis": 0}], "direct"
        return services.deployment_start(
            actor=self.actors.manager,
            release_id=release.public_id,
            target=self.target.name,
            strategy=strategy,
            steps=steps,
            thresholds={"max_error_rate": 0.5, "max_p99_ms": 10000.0, "max_restarts": 5, "min_requests": 0},
        )

    def wait_done(self, deployment, *, in_process: bool, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            deployment.refresh_from_db()
            if deployment.state not in ("pending", "progressing") and deployment.converged:
                if deployment.state != "succeeded":
                    raise SystemExit(f"rollout {deployment.public_id} ended {deployment.state}: {deployment.message}")
                return
            if in_process:
                from apps.deployments import services

                services.deployments_enqueue_due()
                run_jobs()
                time.sleep(0.02)
            else:
                time.sleep(0.1)
        raise SystemExit(
            f"rollout {deployment.public_id} still {deployment.state} ({deployment.phase}) after {timeout}s"
        )


def measure_steps(args, actors: Actors, kube: Kube, *, in_process: bool, label: str) -> dict:
    """Stable v1 (direct), then canaries until ``args.steps`` steps were applied; the latencies per step."""
    from apps.deployments import services
    from apps.jobs.models import Job
    from apps.registry.models import ModelVersion

    namespace = f"{args.prefix}-{label}-{uuid.uuid4().hex[:6]}"
    kube.make_namespace(namespace)
    kubelet = Kubelet(kube, namespace)
    watches = {kind: Watcher(kube, namespace, kind) for kind in ("deployment", "configmap")}
    kubelet.start()
    for w in watches.values():
        w.start()
        w.started.wait(30)
    worker = None
    sink = Path(args.work) / f"decisions-{label}.jsonl"
    sink.unlink(missing_ok=True)
    decisions = Decisions()
    try:
        rollouts = Rollouts(args, actors, kube, namespace, label)
        numbers = ModelVersion.objects.filter(model=rollouts.model).values_list("number", flat=True)
        first = max(numbers, default=0) + 1
        if in_process:
            decisions.install()
        else:
            worker = start_worker(args, sink)
        started: list = []
        number, applied = first, 0
        per_rollout = len(args.weights) + 1
        stable = rollouts.start(number, [])
        started.append(stable)
        rollouts.wait_done(stable, in_process=in_process)
        while applied < args.steps:
            number += 1
            deployment = rollouts.start(number, args.weights)
            started.append(deployment)
            rollouts.wait_done(deployment, in_process=in_process)
            applied += per_rollout
        time.sleep(1.0)  # the last watch events arrive
    finally:
        if in_process:
            decisions.uninstall()
        if worker is not None:
            stop_worker(worker)
        kubelet.stop.set()
        for w in watches.values():
            w.stop.set()
        if not args.keep:
            kube.delete_namespace(namespace)
    rollouts.retire()
    rows = decisions.seen if in_process else [json.loads(x) for x in sink.read_text().splitlines() if x.strip()]
    by_version = {str(d.version_id): d for d in started[1:]}  # the stable version's deployment is the set-up
    jobs = list(
        Job.objects.filter(kind=services.ADVANCE_JOB, target_id__in=[str(d.public_id) for d in started]).values(
            "target_id", "created_at", "started_at", "finished_at"
        )
    )
    to_deployment, to_anchor, to_server_from_queue, queue_wait, first_to_deployment = [], [], [], [], []
    missing = retried = 0
    # A step may be decided more than once: a job whose apply the driver refused (a stale fence) leaves the step
    # to the next job. The step's figures are those of its last decision before its write reached the server.
    steps: dict[tuple, list[float]] = {}
    for row in rows:
        if row["version_id"] in by_version:
            steps.setdefault((row["version_id"], row["phase"], row["step"]), []).append(row["at"])
    for (version_id, phase, index), times in steps.items():
        deployment = by_version[version_id]
        weight = str(expected_weight(deployment, {"phase": phase, "step": index}))

        def is_step(name, annotations, version_id=version_id, weight=weight):
            return annotations.get(ANNOTATION_VERSION_ID) == version_id and annotations.get(ANNOTATION_WEIGHT) == weight

        at_server = watches["deployment"].changed(times[0], is_step)
        if at_server is None:
            missing += 1
            continue
        decided = max(t for t in times if t <= at_server)
        retried += sum(1 for t in times if t <= at_server) - 1
        to_deployment.append((at_server - decided) * 1000)
        first_to_deployment.append((at_server - times[0]) * 1000)
        service = deployment.service

        def is_anchor(name, data, service=service):
            return name.startswith(service) and "plan" in (data or {})

        anchor = watches["configmap"].changed(decided, is_anchor, key=lambda data: (data or {}).get("members"))
        if anchor is not None and anchor <= at_server:
            to_anchor.append((anchor - decided) * 1000)
        job = next(
            (
                j
                for j in jobs
                if j["target_id"] == str(deployment.public_id)
                and j["started_at"]
                and j["started_at"].timestamp() <= decided <= (j["finished_at"] or j["started_at"]).timestamp() + 60
            ),
            None,
        )
        if job is not None:
            to_server_from_queue.append((at_server - job["created_at"].timestamp()) * 1000)
            queue_wait.append((job["started_at"] - job["created_at"]).total_seconds() * 1000)
    return {
        "label": label,
        "decision_to_deployment_ms": to_deployment,
        "decision_to_anchor_ms": to_anchor,
        "job_queued_to_deployment_ms": to_server_from_queue,
        "job_queue_wait_ms": queue_wait,
        "first_decision_to_deployment_ms": first_to_deployment,
        "decided_again": retried,
        "unmatched": missing,
        "rollouts": len(started),
    }


def start_worker(args, sink: Path) -> subprocess.Popen:
    """``python -m worker --beat`` (broker-less, the job table is its queue), with the decision hook installed."""
    log_path = Path(args.work) / "worker.log"
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--worker-hook", str(sink)],
        cwd=ROOT,
        env=os.environ.copy(),
        stdin=subprocess.DEVNULL,
        stdout=open(log_path, "ab"),  # noqa: SIM115 - the child holds it
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    from apps.jobs.models import WorkerHeartbeat

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the worker exited ({proc.returncode}); see {log_path}")
        if WorkerHeartbeat.objects.filter(name__endswith=f":{proc.pid}").exists():
            return proc
        time.sleep(0.2)
    return proc


def stop_worker(proc: subprocess.Popen) -> None:
    import signal

    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def worker_with_hook(sink: str) -> None:
    """The worker process: Django set up, ``decide`` wrapped to note its decisions in ``sink``, then the worker."""
    import django

    django.setup()
    Decisions(sink=sink).install()
    from worker.standalone import main as worker_main

    worker_main(["--concurrency", "2", "--beat"])


# ---------------------------------------------------------------------------------------------
# Part 2: one reconciler pass over many deployments


def seed_reconciler(args, actors: Actors, kube: Kube) -> list:
    """``args.deployments`` serving deployments over ``args.namespaces`` targets; rows reused, objects made afresh."""
    from django.db import transaction
    from django.utils import timezone

    from apps.deployments import planning, services
    from apps.deployments.models import Deployment
    from apps.releases.gate_decisions import gate_decisions_refresh
    from worker.drivers.kubernetes.fencing import put
    from worker.drivers.kubernetes.manifests import anchor as anchor_manifest
    from worker.drivers.kubernetes.objects import CONFIG_MAP, SERVICE
    from worker.drivers.registry import driver_for

    targets = []
    for i in range(args.namespaces):
        namespace = f"{args.prefix}-recon-{i}"
        target = ensure_target(actors, kube, f"deploy-bench-recon-{i}", namespace)
        if target.settings.get("namespace") != namespace or not target.enabled:
            settings, credentials = kube.target_settings(namespace)
            target = services.target_update(
                actor=actors.admin, target_id=target.public_id, settings=settings, credentials=credentials, enabled=True
            )
        targets.append(target)
    started = time.monotonic()
    made = []
    for n in range(args.deployments):
        name = f"{RECON_PREFIX}{n:05d}"
        target = targets[n % len(targets)]
        model = ensure_model(actors, name)
        if Deployment.objects.filter(model=model, target=target, state="succeeded").exists():
            continue
        made.append(approved_release(actors, model, 1, refresh=False).version_id)
        if len(made) % 100 == 0:
            log(f"seeded {len(made)} releases ({time.monotonic() - started:.0f} s)")
    if made:
        run_jobs()
        gate_decisions_refresh(version_ids=made, reason="deploy-bench")
    fresh = []
    for n in range(args.deployments):
        name = f"{RECON_PREFIX}{n:05d}"
        target = targets[n % len(targets)]
        if Deployment.objects.filter(model__name=name, target=target, state="succeeded").exists():
            continue
        from apps.releases.models import ReleaseRequest

        release = ReleaseRequest.objects.get(model__name=name, version__number=1, status="approved")
        fresh.append(
            services.deployment_start(
                actor=actors.manager, release_id=release.public_id, target=target.name, strategy="direct"
            )
        )
    if fresh:
        # What the engine's promotion leaves: the plan applied (below, on the namespace), the rollout succeeded.
        now = timezone.now()
        with transaction.atomic():
            Deployment.objects.filter(pk__in=[d.pk for d in fresh]).update(
                state="succeeded",
                phase="done",
                converged=True,
                fence=1,
                traffic={"stable": None, "new": 100, "shadow": False},
                next_check_at=None,
                finished_at=now,
                message="seeded by the deploy benchmark",
            )
        run_jobs()  # the queued advance jobs find nothing to do; the start's reactions run
        log(f"seeded {len(fresh)} deployments in {time.monotonic() - started:.0f} s")
    # The namespaces, made afresh, and every serving deployment's plan applied in them by the target's driver.
    began = time.monotonic()
    for target in targets:
        kube.make_namespace(target.settings["namespace"])
    deployments = list(
        Deployment.objects.filter(target__in=targets, state="succeeded").select_related(
            "release", "version", "model", "target", "replaces"
        )
    )
    local = threading.local()

    def apply(deployment) -> None:
        drivers = getattr(local, "drivers", None)
        if drivers is None:
            drivers = local.drivers = {}
        if deployment.target_id not in drivers:
            drivers[deployment.target_id] = driver_for(deployment.target)
        driver = drivers[deployment.target_id]
        plan = planning.plan_for(deployment, {"stable": None, "new": 100, "shadow": False}, deployment.fence)
        if args.with_services:
            driver.apply(plan)
            return
        # What ``apply`` writes, with the driver's own manifests and writes, but the Service (each takes a
        # cluster IP: ``--with-services`` writes them).
        put(driver.store, CONFIG_MAP, anchor_manifest(plan, driver.profile.runtime, plan.fence), plan.fence)
        for kind, body, adjust in driver._deployments(plan):  # noqa: SLF001 - the driver's rendering, reused
            if kind is not SERVICE:
                put(driver.store, kind, body, plan.fence, adjust)

    from django.db import connections

    def apply_closing(deployment) -> None:
        try:
            apply(deployment)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=args.apply_threads) as pool:
        list(pool.map(apply_closing, deployments))
    log(f"applied {len(deployments)} plans over {len(targets)} namespaces in {time.monotonic() - began:.0f} s")
    # The pods started as a kubelet would: the live traffic is the ready replicas' share.
    began = time.monotonic()
    waiting = {
        target.settings["namespace"]: (Kubelet(kube, target.settings["namespace"]), target.pk) for target in targets
    }
    deadline = time.monotonic() + 900
    while waiting:
        for namespace, (kubelet, target_id) in list(waiting.items()):
            kubelet.once()
            expected = sum(1 for d in deployments if d.target_id == target_id)
            items = kube.apps.list_namespaced_deployment(namespace).items
            if sum(1 for d in items if (d.status.ready_replicas or 0) >= 1) >= expected:
                del waiting[namespace]
        if time.monotonic() > deadline:
            raise SystemExit(f"{', '.join(waiting)}: the Deployments did not become ready in 900 s")
        time.sleep(1)
    log(f"{len(deployments)} Deployments ready in {time.monotonic() - began:.0f} s")
    return targets, len(deployments)


class Counting:
    """Counts HTTP requests to the API server (every request the kubernetes client sends) and SQL queries."""

    def __init__(self) -> None:
        from kubernetes.client import rest

        self.rest = rest
        self.original = rest.RESTClientObject.request
        self.requests = 0
        self.api_seconds = 0.0  # spent waiting on the API server's answers (the request and reading the body)
        self.queries = 0
        self.db_seconds = 0.0
        self.lock = threading.Lock()

    def __enter__(self) -> Counting:
        original = self.original

        def request(client, *a, **kw):
            began = time.perf_counter()
            try:
                return original(client, *a, **kw)
            finally:
                with self.lock:
                    self.requests += 1
                    self.api_seconds += time.perf_counter() - began

        self.rest.RESTClientObject.request = request
        return self

    def __exit__(self, *exc) -> None:
        self.rest.RESTClientObject.request = self.original

    def query(self, execute, sql, params, many, context):
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.queries += 1
            self.db_seconds += time.perf_counter() - began


def measure_reconciler(args, actors: Actors, kube: Kube) -> dict:
    from django.db import connection

    from worker.reconciler import reconcile_all

    passes, targets, serving = [], [], 0
    try:
        targets, serving = seed_reconciler(args, actors, kube)
        for n in range(args.passes):
            with Counting() as counting, connection.execute_wrapper(counting.query):
                began = time.perf_counter()
                found = reconcile_all()
                seconds = time.perf_counter() - began
            passes.append(
                {
                    "seconds": seconds,
                    "requests": counting.requests,
                    "api_seconds": counting.api_seconds,
                    "queries": counting.queries,
                    "db_seconds": counting.db_seconds,
                    "findings": found,
                }
            )
            log(
                f"pass {n + 1}: {seconds:.2f} s, {counting.requests} API requests ({counting.api_seconds:.2f} s), "
                f"{counting.queries} SQL queries ({counting.db_seconds:.2f} s), {found} new findings"
            )
    finally:
        if not args.keep:
            names = [f"{args.prefix}-recon-{i}" for i in range(args.namespaces)]
            for name in names:
                kube.delete_namespace(name, wait=False)
            for name in names:
                kube.delete_namespace(name)
    return {"passes": passes, "targets": len(targets), "deployments": serving}


# ---------------------------------------------------------------------------------------------


def report(steps: list[dict], recon: dict | None, facts: dict, args) -> None:
    print()
    print(machine.line(facts))
    print(f"database: {args.database_url.split('@')[-1]}; API server {os.environ.get('ASSAY_TEST_KUBE_VERSION', '?')}")
    for result in steps:
        where = "in this process" if result["label"] == "inproc" else "by python -m worker --beat"
        print(f"\nstep latency, jobs run {where} ({result['rollouts']} rollouts, weights {args.weights} + promote)")
        print(f"  {'decision -> Deployment at server':<36} {summary(result['decision_to_deployment_ms'])}")
        print(f"  {'decision -> anchor ConfigMap':<36} {summary(result['decision_to_anchor_ms'])}")
        print(f"  {'first decision -> Deployment':<36} {summary(result['first_decision_to_deployment_ms'])}")
        print(f"  {'job queued -> Deployment at server':<36} {summary(result['job_queued_to_deployment_ms'])}")
        print(f"  {'job queued -> job started':<36} {summary(result['job_queue_wait_ms'])}")
        if result["decided_again"]:
            print(f"  ({result['decided_again']} decisions were made again: the driver refused the first apply)")
        if result["unmatched"]:
            print(f"  ({result['unmatched']} decided steps never seen at the server)")
    if recon:
        passes = recon["passes"]
        print(f"\nreconciler: {recon['deployments']} deployments over {recon['targets']} targets (namespaces)")
        for label, chosen in (("cold (pass 1)", passes[:1]), (f"warm (passes 2-{len(passes)})", passes[1:])):
            if not chosen:
                continue
            secs = [p["seconds"] for p in chosen]
            print(
                f"  {label:<20} {statistics.median(secs):7.2f} s/pass (min {min(secs):.2f}, max {max(secs):.2f}); "
                f"API requests {chosen[0]['requests']} ({statistics.median(p['api_seconds'] for p in chosen):.2f} s), "
                f"SQL queries {chosen[0]['queries']} ({statistics.median(p['db_seconds'] for p in chosen):.2f} s), "
                f"new findings {sum(p['findings'] for p in chosen)}"
            )
    print(f"\nmeasured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=24, help="steps applied per run of part 1 (at least)")
    parser.add_argument(
        "--weights", default="10,25,50", type=lambda s: [int(x) for x in s.split(",") if x], help="canary weights"
    )
    parser.add_argument("--deployments", type=int, default=1000, help="serving deployments the reconciler reads")
    parser.add_argument("--namespaces", type=int, default=4, help="targets (a namespace each) they are spread over")
    parser.add_argument("--passes", type=int, default=5, help="reconciler passes")
    parser.add_argument(
        "--with-services",
        action="store_true",
        help="part 2 also writes each deployment's Service (needs a cluster IP each: a real cluster's range)",
    )
    parser.add_argument("--apply-threads", type=int, default=8, help="threads applying the seeded plans")
    parser.add_argument("--only", choices=("steps", "reconciler"), help="run one part")
    parser.add_argument("--no-worker", action="store_true", help="part 1 in this process only")
    parser.add_argument("--poll", type=float, default=0.2, help="ASSAY_DEPLOY_POLL_SECONDS")
    parser.add_argument("--tick", type=float, default=0.5, help="the worker's ASSAY_DEPLOY_TICK_SECONDS")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/assay_deploy_bench")
    parser.add_argument("--cache-url", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--work", default="/tmp/assay-deploy-bench", help="artifacts, worker log, decisions")
    parser.add_argument("--keep", action="store_true", help="keep the namespaces")
    parser.add_argument("--prefix", default="assay-bench", help="the namespaces' names start with it")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--worker-hook", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker_hook:
        worker_with_hook(args.worker_hook)
        return 0
    missing = [name for name in KUBE_ENV if not os.environ.get(name)]
    if missing:
        print(f"needs the test Kubernetes API server: set {', '.join(missing)}", file=sys.stderr)
        return 2
    env = environment(args)
    os.environ.update(env)
    prepare_database(args, env)
    import django

    django.setup()
    import worker.tasks  # noqa: F401 - registers the job handlers a worker runs

    facts_before = machine.describe()
    print(machine.line(facts_before), flush=True)
    kube = Kube()
    kube.ensure_node()
    actors = Actors()
    leftover = run_jobs()  # an earlier run's queued jobs (reactions) would weigh on the worker's figures
    if leftover:
        log(f"ran {leftover} jobs an earlier run left queued")
    steps: list[dict] = []
    recon = None
    if args.only in (None, "steps"):
        log("part 1: step latency, jobs run in this process")
        steps.append(measure_steps(args, actors, kube, in_process=True, label="inproc"))
        if not args.no_worker:
            log("part 1: step latency, jobs run by python -m worker --beat")
            steps.append(measure_steps(args, actors, kube, in_process=False, label="worker"))
    if args.only in (None, "reconciler"):
        log(f"part 2: reconciler over {args.deployments} deployments")
        recon = measure_reconciler(args, actors, kube)
    report(steps, recon, machine.describe(), args)
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": facts_before, "steps": steps, "reconciler": recon}, indent=1, default=str)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
