"""The local target's router: one process on 127.0.0.1 in front of the serving processes of every service.

    python -m worker.serving.router --state-dir DIR --port 18000

- ``/v2/models/{service}/infer``: sent to one live member, chosen by smooth weighted round-robin
  (``worker.serving.routing``), and the answer returned as it is. A copy goes to every shadow member in the
  background after the caller has its answer; the shadow's answer is compared with the live one (the
  ``predictions`` output) and counted, never returned. ``/v2/models/{service}/versions/{v}/infer`` goes to
  that version only. Other ``GET /v2/models/{service}...`` paths are answered by the heaviest live member.
- ``/admin/v1/services[/{service}]``: read (GET), set (PUT) or remove (DELETE ``?fence=N``) a service's
  configuration, with ``Authorization: Bearer <token>`` (the token is read from ``DIR/router.token``). A
  configuration or removal under a lower fence than the one held is refused with 409.
- ``/metrics``: per-member counters and latency in Prometheus text; ``/v2/health/live`` and ``ready``.

Every accepted change is written to ``DIR/router-state.json`` before it is acknowledged, and read back at
start, so a restarted router serves the last applied configuration. Counters restart from zero.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import math
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs

import orjson

from worker.serving import rsgi
from worker.serving.metrics import labels
from worker.serving.routing import (
    ConfigRefused,
    RouteMember,
    Service,
    StaleConfig,
    Table,
    service_from_config,
)
from worker.serving.upstream import Upstream, UpstreamFailed

MAX_BODY = 16 * 1024 * 1024
MAX_MIRRORS_IN_FLIGHT = 64
TOKEN_FILE = "router.token"  # noqa: S105 - the name of the file, not a token
STATE_FILE = "router-state.json"
ADMIN = "/admin/v1/services"


def _predictions(answer: bytes) -> list | None:
    try:
        outputs = orjson.loads(answer)["outputs"]
        chosen = next((o for o in outputs if o.get("name") == "predictions"), outputs[0])
        return chosen["data"]
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None


def _same(a: list | None, b: list | None) -> bool:
    if a is None or b is None or len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x == y:
            continue
        numbers = isinstance(x, int | float) and isinstance(y, int | float)
        if numbers and (isinstance(x, float) or isinstance(y, float)) and math.isclose(x, y, rel_tol=1e-6):
            continue
        return False
    return True


class RouterApp:
    """The RSGI application: the table of services, the upstream connections, the mirrors in flight."""

    def __init__(self, table: Table, token: str) -> None:
        self.table, self.token = table, token.encode()
        self.upstreams: dict[int, Upstream] = {}
        self.mirrors: set[asyncio.Task] = set()
        self.mirrors_dropped = 0
        self.started = time.time()

    def upstream(self, member: RouteMember) -> Upstream:
        found = self.upstreams.get(member.port)
        if found is None:
            found = self.upstreams[member.port] = Upstream("127.0.0.1", member.port)
        return found

    async def __rsgi__(self, scope, proto) -> None:
        try:
            await self._route(scope, proto)
        except Exception:
            rsgi.log.exception("unexpected error answering %s %s", scope.method, scope.path)
            with contextlib.suppress(Exception):  # the answer may already have been sent
                rsgi.error(proto, 500, "internal error in the router")

    async def _route(self, scope, proto) -> None:
        path = scope.path
        if path.startswith("/v2/models/"):
            return await self._model(scope, proto, path)
        if path.startswith(ADMIN):
            return await self._admin(scope, proto, path)
        if path in ("/v2/health/live", "/v2/health/ready"):
            return rsgi.answer(proto, 200, {"live": True} if path.endswith("live") else {"ready": True})
        if path == "/metrics":
            return proto.response_str(200, rsgi.TEXT, self.metrics_text())
        return rsgi.error(proto, 404, f"no route {path}")

    # --- inference ------------------------------------------------------------------------------------------

    async def _model(self, scope, proto, path: str) -> None:
        parts = path.split("/")  # "", "v2", "models", service, ...
        service = self.table.services.get(parts[3]) if len(parts) > 3 else None
        if service is None or service.removed:
            return rsgi.error(proto, 404, f"no service {parts[3] if len(parts) > 3 else ''!r} on this target")
        rest = parts[4:]
        pinned = None
        if rest[:1] == ["versions"] and len(rest) >= 2:
            pinned = service.by_version(rest[1])
            if pinned is None:
                return rsgi.error(proto, 404, f"service {service.name!r} has no version {rest[1]!r}")
            rest = rest[2:]
        if rest == ["infer"]:
            if scope.method != "POST":
                return rsgi.error(proto, 405, "infer takes POST")
            return await self._infer(scope, proto, service, pinned, path)
        if scope.method != "GET":
            return rsgi.error(proto, 405, f"{path} takes GET")
        member = pinned or max(service.live, key=lambda m: m.weight, default=None)
        if member is None:
            return rsgi.error(proto, 503, f"service {service.name!r} has no live member")
        try:
            status, answer = await self.upstream(member).request("GET", path, timeout=5)
        except UpstreamFailed as exc:
            return rsgi.error(proto, 502, f"version {member.version} did not answer: {exc}")
        proto.response_bytes(status, rsgi.JSON, answer)

    async def _infer(self, scope, proto, service: Service, pinned: RouteMember | None, path: str) -> None:
        body = await rsgi.read_body(scope, proto, MAX_BODY)
        if body is None:
            return
        member = pinned or service.pick()
        if member is None:
            return rsgi.error(proto, 503, f"service {service.name!r} has no live member with traffic")
        started = time.perf_counter()
        try:
            status, answer = await self.upstream(member).request("POST", path, body)
        except UpstreamFailed as exc:
            status, answer = 502, rsgi.dumps({"error": f"version {member.version} did not answer: {exc}"})
            member.stats.unanswered += 1
        stats = member.stats
        stats.routed += 1
        stats.latency.observe(time.perf_counter() - started)
        if status != 200:
            stats.errors += 1
        proto.response_bytes(status, rsgi.JSON, answer)
        if service.shadows and pinned is None:
            self._mirror(service, path, body, status, answer)

    def _mirror(self, service: Service, path: str, body: bytes, live_status: int, live_answer: bytes) -> None:
        if len(self.mirrors) >= MAX_MIRRORS_IN_FLIGHT:
            self.mirrors_dropped += 1  # the shadows are behind: drop the copy rather than queue without bound
            return
        task = asyncio.get_running_loop().create_task(
            self._mirror_run(list(service.shadows), path, body, live_status, live_answer)
        )
        self.mirrors.add(task)
        task.add_done_callback(self.mirrors.discard)

    async def _mirror_run(self, shadows, path: str, body: bytes, live_status: int, live_answer: bytes) -> None:
        live = _predictions(live_answer) if live_status == 200 else None
        await asyncio.gather(*(self._mirror_one(s, path, body, live) for s in shadows))

    async def _mirror_one(self, shadow: RouteMember, path: str, body: bytes, live: list | None) -> None:
        started = time.perf_counter()
        try:
            status, answer = await self.upstream(shadow).request("POST", path, body)
        except UpstreamFailed:
            status, answer = 502, b""
            shadow.stats.unanswered += 1
        except Exception:
            rsgi.log.exception("mirroring to version %s failed", shadow.version)
            status, answer = 500, b""
        stats = shadow.stats
        stats.mirrored += 1
        stats.latency.observe(time.perf_counter() - started)
        if status != 200:
            stats.errors += 1
        if live is not None:  # only a live answer can be compared with
            stats.compared += 1
            if status != 200 or not _same(live, _predictions(answer)):
                stats.disagreed += 1

    # --- administration -------------------------------------------------------------------------------------

    def _authorised(self, scope) -> bool:
        given = scope.headers.get("authorization") or ""
        scheme, _, value = given.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), self.token)

    async def _admin(self, scope, proto, path: str) -> None:
        if not self._authorised(scope):
            return rsgi.error(proto, 401, "the router's admin token is required (Authorization: Bearer ...)")
        name = path[len(ADMIN) :].strip("/")
        method = scope.method
        if not name:
            if method != "GET":
                return rsgi.error(proto, 405, f"{ADMIN} takes GET")
            return rsgi.answer(proto, 200, {"services": {n: self.view(s) for n, s in self.table.services.items()}})
        if method == "GET":
            service = self.table.services.get(name)
            if service is None:
                return rsgi.error(proto, 404, f"no service {name!r} on this target")
            return rsgi.answer(proto, 200, self.view(service))
        try:
            if method == "PUT":
                body = await rsgi.read_body(scope, proto, 1024 * 1024)
                if body is None:
                    return
                try:
                    doc = orjson.loads(body)
                except ValueError:
                    return rsgi.error(proto, 400, "the body is not JSON")
                service = self.table.put(service_from_config(name, doc))
                return rsgi.answer(proto, 200, self.view(service))
            if method == "DELETE":
                raw = parse_qs(scope.query_string).get("fence", [""])[0]
                if not raw.lstrip("-").isdigit():
                    return rsgi.error(proto, 400, "DELETE needs ?fence=<integer>")
                self.table.remove(name, int(raw))
                return rsgi.answer(proto, 200, self.view(self.table.services[name]))
        except ConfigRefused as exc:
            return rsgi.error(proto, 400, str(exc))
        except StaleConfig as exc:
            return rsgi.answer(proto, 409, {"error": str(exc), "held_fence": exc.held})
        return rsgi.error(proto, 405, f"{path} takes GET, PUT or DELETE")

    def view(self, service: Service) -> dict:
        """A service's configuration with what the router saw of each member."""
        doc = service.as_config()
        doc["service"] = service.name
        for raw, member in zip(doc["members"], service.members, strict=True):
            s = member.stats
            raw.update(
                routed=s.routed,
                mirrored=s.mirrored,
                errors=s.errors,
                unanswered=s.unanswered,
                compared=s.compared,
                disagreed=s.disagreed,
                latency_p50_ms=s.latency.quantile_ms(0.5),
                latency_p99_ms=s.latency.quantile_ms(0.99),
            )
        return doc

    def metrics_text(self) -> str:
        out = [
            "# TYPE assay_router_requests_total counter",
            "# TYPE assay_router_errors_total counter",
            "# TYPE assay_router_shadow_compared_total counter",
            "# TYPE assay_router_shadow_disagreed_total counter",
            "# TYPE assay_router_service_fence gauge",
            "# TYPE assay_router_latency_seconds histogram",
        ]
        for name, service in sorted(self.table.services.items()):
            out.append(f"assay_router_service_fence{{{labels(service=name)}}} {service.fence}")
            for m in service.members:
                role = "shadow" if m.shadow else "live"
                lab = labels(service=name, version=m.version, version_id=m.version_id, role=role)
                s = m.stats
                out.append(f"assay_router_requests_total{{{lab}}} {s.routed + s.mirrored}")
                out.append(f"assay_router_errors_total{{{lab}}} {s.errors}")
                if m.shadow:
                    out.append(f"assay_router_shadow_compared_total{{{lab}}} {s.compared}")
                    out.append(f"assay_router_shadow_disagreed_total{{{lab}}} {s.disagreed}")
                out += s.latency.lines("assay_router_latency_seconds", lab)
        out.append("# TYPE assay_router_mirrors_dropped_total counter")
        out.append(f"assay_router_mirrors_dropped_total {self.mirrors_dropped}")
        return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Route V2 inference to the local target's serving processes.")
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    token_file = args.state_dir / TOKEN_FILE
    try:
        token = token_file.read_text().strip()
    except OSError as exc:
        print(f"refusing to start: cannot read the admin token ({token_file}): {exc.strerror}", file=sys.stderr)
        return 2
    if len(token) < 16:
        print(f"refusing to start: the admin token in {token_file} is too short", file=sys.stderr)
        return 2
    table = Table(args.state_dir / STATE_FILE)
    table.load()
    rsgi.serve(RouterApp(table, token), args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
