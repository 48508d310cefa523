"""The local deployment target: approved versions served by real processes on 127.0.0.1, behind one router.

The embedded default and the demo. Settings (all optional):

- ``name``: the target's name (``local``); ``state_dir``: its folder (``<ASSAY_VAR_DIR>/deployments/<name>``);
- ``router_port``: the router's port (0: a free one, picked once and recorded);
- ``port_range``: ``"18100-18199"`` (or ``[18100, 18199]``) for the serving processes (default: any free port);
- ``ready_wait_seconds``: how long ``apply`` waits for new processes to answer (5); ``inference_threads`` (0).

Secrets (optional): ``router_token``, the router's admin token; without it one is generated into the state
folder (mode 0600). The state folder holds::

    router.json            the router's port and pid          router.token        its admin token
    router-state.json      what the router serves (it writes it; fences of removed services stay)
    artifacts/<sha256>     each approved artifact, re-hashed when fetched, read-only
    members/<service>/<version_id>.json    each serving process: port, pid, digest, restarts
    logs/                  each process's output

``apply`` is idempotent and short: it refuses a stale fence before touching anything, fetches and re-hashes
new artifacts (``DigestMismatch``), starts the processes that are missing, dead or serving another digest,
waits at most ``ready_wait_seconds`` for them, gives the router the plan's weights and shadows under the
plan's fence, and stops the members the plan no longer lists. ``observe`` reads the router's view and each
server's ``/metrics``. A router that died is started again from its saved state by the next call.
"""

from __future__ import annotations

import json
import os
import re
import secrets as secrets_module
import time
from pathlib import Path

from apps.deployments.plans import (
    SERVICE_NAME,
    DriverError,
    MemberStatus,
    Observed,
    Plan,
    StaleFence,
)
from worker.drivers import local_artifacts
from worker.drivers import local_processes as procs
from worker.serving import metrics
from worker.serving.client import V2Client, get

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
FORMATS = ("onnx", "skops", "xgboost", "lightgbm")  # what worker.serving.server loads
SERVER = "worker.serving.server"
ROUTER = "worker.serving.router"


def _port_range(raw: object) -> tuple[int, int] | None:
    if not raw:
        return None
    lo, hi = (raw.split("-", 1) if isinstance(raw, str) else raw)[:2]
    lo, hi = int(lo), int(hi)
    if not 1024 <= lo <= hi <= 65535:
        raise DriverError(f"port_range {raw!r} is not a range of ports between 1024 and 65535")
    return lo, hi


def _write_json(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


class LocalDriver:
    """Serving processes and a router on this machine; see the module's docstring."""

    kind = "local"

    def __init__(self, settings: dict, secrets: dict) -> None:
        self.name = str(settings.get("name") or "local")
        if not SERVICE_NAME.match(self.name):
            raise DriverError(f"target name {self.name!r} is not a DNS label")
        state_dir = settings.get("state_dir")
        if not state_dir:
            from django.conf import settings as django_settings

            state_dir = Path(django_settings.VAR_DIR) / "deployments" / self.name
        self.state = Path(state_dir).resolve()
        self.router_port = int(settings.get("router_port") or 0)
        self.port_range = _port_range(settings.get("port_range"))
        self.ready_wait = float(settings.get("ready_wait_seconds", 5))
        self.threads = int(settings.get("inference_threads", 0))
        self._token_secret = str(secrets.get("router_token") or "")

    # --- the protocol ---------------------------------------------------------------------------------------

    def apply(self, plan: Plan) -> None:
        if plan.kind != "online":
            raise DriverError("the local target serves online models only; a batch plan needs another target")
        for m in plan.members:
            if not local_artifacts.DIGEST.match(m.digest) or not _SAFE_ID.match(m.version_id):
                raise DriverError(f"member {m.version_id!r}: the digest must be 64 hex characters, the id plain")
            if m.format not in FORMATS:
                raise DriverError(f"version {m.version}: the local target serves {', '.join(FORMATS)}; not {m.format}")
        with procs.locked(self.state / "driver.lock"):
            port = self._ensure_router()
            held = self._service_doc(port, plan.service)
            if held is not None and plan.fence < held["fence"]:
                raise StaleFence(f"service {plan.service!r} holds fence {held['fence']}; this plan has {plan.fence}")
            records = self._records(plan.service)
            # every artifact is fetched and re-hashed before any process starts
            artifacts = {m.digest: local_artifacts.ensure(self.state / "artifacts", m) for m in plan.members}
            started = []
            for m in plan.members:
                record = records.get(m.version_id)
                if record and record["digest"] == m.digest and self._alive(record):
                    continue
                started.append(self._start(plan.service, m, artifacts[m.digest], record))
            self._wait_started(started)
            now = self._records(plan.service)
            config = {"fence": plan.fence, "model": plan.model, "members": []}
            for m in plan.members:
                config["members"].append(
                    {"version_id": m.version_id, "version": m.version, "digest": m.digest}
                    | {"port": now[m.version_id]["port"], "weight": 0 if m.shadow else m.weight, "shadow": m.shadow}
                )
            self._admin_change("PUT", plan.service, config)
            keep = {m.version_id for m in plan.members}
            for version_id, record in records.items():
                if version_id not in keep:
                    self._stop_member(plan.service, record)
            self._collect_artifacts()

    def observe(self, service: str) -> Observed:
        port = self._router_if_serving()
        if port is None:
            return self._observed_from_file(service)
        doc = self._service_doc(port, service)
        if doc is None or doc.get("removed"):
            held = doc or {}
            return Observed(service=service, exists=False, fence=held.get("fence"), model=held.get("model", ""))
        records = self._records(service)
        members = [self._member_status(m, records.get(m["version_id"])) for m in doc["members"]]
        return Observed(
            service=service,
            exists=True,
            fence=doc["fence"],
            model=doc.get("model", ""),
            members=members,
            message=f"router {self.url(port)}/v2/models/{service}/infer",
        )

    def remove(self, service: str, fence: int) -> None:
        with procs.locked(self.state / "driver.lock"):
            held = _read_json(self.state / "router-state.json").get("services", {}).get(service)
            if held is not None and fence < held["fence"]:
                raise StaleFence(f"service {service!r} holds fence {held['fence']}; removal under {fence} is stale")
            if held is not None and not held.get("removed"):
                self._admin_change("DELETE", f"{service}?fence={int(fence)}", None, port=self._ensure_router())
            for record in self._records(service).values():
                self._stop_member(service, record)
            self._collect_artifacts()
            if not self._serving_names():
                router = _read_json(self.state / "router.json")
                procs.stop(router.get("pid"), ROUTER, f"--state-dir={self.state}")

    def services(self) -> list[Observed]:
        if self._router_if_serving() is None:
            return []
        return [self.observe(name) for name in self._serving_names()]

    # --- for the demo and the tests -------------------------------------------------------------------------

    def endpoint(self) -> str:
        """The router's base URL (``http://127.0.0.1:PORT``); V2 requests go to ``/v2/models/<service>/infer``."""
        with procs.locked(self.state / "driver.lock"):
            return self.url(self._ensure_router())

    @staticmethod
    def url(port: int) -> str:
        return f"http://127.0.0.1:{port}"

    # --- the router -----------------------------------------------------------------------------------------

    def _token(self) -> str:
        """The router's admin token: the target's secret, else the one generated into the state folder."""
        if self._token_secret:
            return self._token_secret
        path = self.state / "router.token"
        return path.read_text().strip() if path.is_file() else ""

    def _write_token(self) -> bool:
        """Make ``router.token`` hold the token (generating one if there is none); True when it changed."""
        path = self.state / "router.token"
        current = path.read_text().strip() if path.is_file() else ""
        wanted = self._token_secret or current or secrets_module.token_urlsafe(32)
        if wanted == current:
            return False
        self.state.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(wanted)
        return True

    def _ensure_router(self) -> int:
        record = _read_json(self.state / "router.json")
        markers = (ROUTER, f"--state-dir={self.state}")
        port = self.router_port or record.get("port") or 0
        token_changed = self._write_token()  # a rotated secret: the router reads its token when it starts
        if port and record.get("port") == port and not token_changed and procs.running(record.get("pid"), *markers):
            return port
        procs.stop(record.get("pid"), *markers)
        if not port:
            port = procs.free_port(self.port_range, self._member_ports())
        log = self.state / "logs" / "router.log"
        pid = procs.start_detached(["-m", ROUTER, f"--state-dir={self.state}", f"--port={port}"], log=log)
        _write_json(self.state / "router.json", {"port": port, "pid": pid})
        wait = max(self.ready_wait, 5.0)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not procs.running(pid):
                raise DriverError(f"the local router did not start: {procs.log_tail(log)}")
            try:
                if get(self.url(port), "/v2/health/ready", timeout=0.5)[0] == 200:
                    return port
            except OSError:
                pass
            time.sleep(0.05)
        raise DriverError(f"the local router did not answer on port {port} within {wait:g} s")

    def _serving_names(self) -> list[str]:
        services = _read_json(self.state / "router-state.json").get("services", {})
        return sorted(n for n, s in services.items() if not s.get("removed"))

    def _router_if_serving(self) -> int | None:
        """The router's port, started again from its saved state if it died; None when it serves nothing."""
        if not self._serving_names():
            return None
        with procs.locked(self.state / "driver.lock"):
            return self._ensure_router()

    def _admin(self, port: int, method: str, path: str, body: object = None) -> tuple[int, dict]:
        try:
            with V2Client(self.url(port), timeout=10, token=self._token()) as client:
                return client.json(method, f"/admin/v1/services/{path}", body)
        except OSError as exc:
            raise DriverError(f"the local router on port {port} did not answer: {exc}") from None

    def _service_doc(self, port: int, service: str) -> dict | None:
        status, doc = self._admin(port, "GET", service)
        if status == 404:
            return None
        if status != 200:
            raise DriverError(f"the local router answered {status} reading {service!r}: {doc.get('error', '')}")
        return doc

    def _admin_change(self, method: str, path: str, body: object, *, port: int | None = None) -> None:
        status, doc = self._admin(port or self._ensure_router(), method, path, body)
        if status == 409:
            raise StaleFence(doc.get("error", "stale fence"))
        if status != 200:
            raise DriverError(f"the local router refused the change ({status}): {doc.get('error', '')}")

    def _observed_from_file(self, service: str) -> Observed:
        held = _read_json(self.state / "router-state.json").get("services", {}).get(service)
        return Observed(service=service, exists=False, fence=held["fence"] if held else None)

    # --- serving processes ----------------------------------------------------------------------------------

    def _records(self, service: str) -> dict[str, dict]:
        folder = self.state / "members" / service
        found = (_read_json(p) for p in sorted(folder.glob("*.json"))) if folder.is_dir() else ()
        return {r["version_id"]: r for r in found if r.get("version_id")}

    def _member_ports(self) -> set[int]:
        return {_read_json(p).get("port", 0) for p in (self.state / "members").glob("*/*.json")}

    @staticmethod
    def _markers(record: dict) -> tuple[str, ...]:
        return SERVER, f"--digest={record['digest']}", f"--port={record['port']}"

    def _alive(self, record: dict) -> bool:
        return procs.running(record.get("pid"), *self._markers(record))

    def _start(self, service: str, member, artifact: Path, previous: dict | None) -> dict:
        if previous:
            procs.stop(previous.get("pid"), *self._markers(previous))
        same = previous is not None and previous["digest"] == member.digest
        port = previous["port"] if previous and procs.port_free(previous["port"]) else None
        router_port = _read_json(self.state / "router.json").get("port", 0)
        port = port or procs.free_port(self.port_range, self._member_ports() | {router_port})
        log = self.state / "logs" / f"{service}.{member.version_id}.log"
        args = ["-m", SERVER, f"--artifact={artifact}", f"--format={member.format}", f"--digest={member.digest}"]
        args += [f"--name={service}", f"--model-version={member.version}", f"--port={port}"]
        args += [f"--threads={self.threads}"]
        record = {
            "version_id": member.version_id,
            "version": member.version,
            "digest": member.digest,
            "format": member.format,
            "port": port,
            "pid": procs.start_detached(args, log=log),
            "restarts": (previous.get("restarts", 0) + 1) if same else 0,
            "log": str(log),
            "started_at": time.time(),
        }
        _write_json(self.state / "members" / service / f"{member.version_id}.json", record)
        return record

    def _wait_started(self, records: list[dict]) -> None:
        """Wait at most ``ready_wait`` seconds for new processes; one that exits is an error, a slow one is not."""
        waiting = list(records)
        deadline = time.monotonic() + self.ready_wait
        while waiting and time.monotonic() < deadline:
            for record in list(waiting):
                if not procs.running(record["pid"]):
                    reason = procs.log_tail(Path(record["log"]), 1)
                    raise DriverError(f"version {record['version']} did not start: {reason}")
                try:
                    if get(self.url(record["port"]), "/v2/health/ready", timeout=0.5)[0] == 200:
                        waiting.remove(record)
                except OSError:
                    pass
            if waiting:
                time.sleep(0.05)

    def _stop_member(self, service: str, record: dict) -> None:
        procs.stop(record.get("pid"), *self._markers(record))
        (self.state / "members" / service / f"{record['version_id']}.json").unlink(missing_ok=True)

    def _collect_artifacts(self) -> None:
        used = (_read_json(p).get("digest", "") for p in (self.state / "members").glob("*/*.json"))
        local_artifacts.collect(self.state / "artifacts", used)

    def _member_status(self, routed: dict, record: dict | None) -> MemberStatus:
        status = MemberStatus(
            version_id=routed["version_id"],
            digest="",
            weight=routed["weight"],
            shadow=routed["shadow"],
            desired_replicas=1,
            restarts=(record or {}).get("restarts", 0),
            requests=routed["routed"] + routed["mirrored"],
            errors=routed["errors"],
            latency_p50_ms=routed["latency_p50_ms"],
            latency_p99_ms=routed["latency_p99_ms"],
            shadow_compared=routed["compared"],
            shadow_disagreed=routed["disagreed"],
        )
        try:
            code, body = get(self.url(routed["port"]), "/metrics", timeout=1.0)
        except OSError as exc:
            code, body = 0, str(exc).encode()
        if code != 200:
            alive = record is not None and self._alive(record)
            status.state = "starting" if alive else "down"
            status.message = procs.log_tail(Path(record["log"]), 1) if record and not alive else ""
            return status
        samples = metrics.parse(body.decode())
        info = next((lab for n, lab, _ in samples if n == "assay_model_info"), {})
        status.digest = info.get("digest", "")
        status.ready_replicas = int(metrics.value(samples, "assay_model_ready"))
        # The process's own counters (they survive a router restart), plus the requests the router sent it
        # that it never answered (refused while it was down or starting, reset, timed out): callers got a 502.
        unanswered = int(routed.get("unanswered", 0))
        status.requests = int(metrics.value(samples, "assay_inference_requests_total")) + unanswered
        status.errors = int(metrics.value(samples, "assay_inference_errors_total")) + unanswered
        latency = metrics.buckets(samples, "assay_inference_latency_seconds")
        status.latency_p50_ms = metrics.quantile_ms(latency, 0.5)
        status.latency_p99_ms = metrics.quantile_ms(latency, 0.99)
        status.state = "ready" if status.ready_replicas else "starting"
        return status
