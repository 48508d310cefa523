"""Registration benchmark: Assay on PostgreSQL under Granian and gunicorn, optionally against MLflow.

One run (``benchmarks/run.sh``, or this file with the project's virtualenv):

1. creates a fresh PostgreSQL database (``assay_bench``), migrates it and
   creates a team, a user with the team-scoped ``contributor`` role, an API
   token (scopes ``read,registry:write``) and a model, through the operator
   commands (or the account services when a command is missing);
2. for each server configuration (by default ``granian:2x2``, Granian with one
   worker per core of 2 threads each, as docs/operations.md runs it in production, and
   ``sync:5``, gunicorn with 2 x cores + 1 sync workers; also ``gthread:NxT``
   and ``uwsgi:N``, see ``servers.ServerConfig``) starts the server with
   ``DJANGO_DEBUG=0`` and measures
   version registrations per second with p50/p99 latency at 1, 8 and 32
   concurrent clients, (a) as JSON with an ``artifact_uri`` and a ``sha256``
   (storage ``s3://`` bucket referenced only) and (b) as a multipart upload of
   a 6 KB ONNX file (storage in a local folder); each request carries a
   distinct artifact and every answer that is not 201 is counted and shown;
   the load comes from one closed-loop generator (``--generator``, by default
   ``loadgen.run_asyncio``), the same for Assay and MLflow, by default with a
   new connection per request (``--keep-alive`` keeps one per client: uvicorn,
   MLflow's server, then hands every connection of a burst to one of its
   workers, which caps MLflow at one worker's speed);
3. runs ``benchmarks/audit_bench.py`` when it exists and includes its output;
4. where MLflow can be installed into its own virtualenv (from
   ``benchmarks/requirements-mlflow.txt``), starts an MLflow server on another
   database of the same PostgreSQL with as many workers, runs the same JSON
   load against ``POST /api/2.0/mlflow/model-versions/create`` and prints the
   ratio Assay/MLflow at each number of clients; unless ``--no-generator-check``,
   it also drives MLflow with the other generator (wrk, or the asyncio one) at
   the same numbers of clients and prints both rates, so the generator is seen
   not to limit the server;
5. prints a table, the machine's load and host speed index at the start and the
   end (``benchmarks/machine.py``), and writes every figure, with those
   facts, to ``benchmarks/results/latest.json``.

No Celery worker runs: the verification jobs the registrations enqueue stay
queued in Redis (db 13 by default), which the output says.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen  # noqa: E402
import machine  # noqa: E402
import onnx_payload  # noqa: E402
import servers  # noqa: E402
from assay_setup import (  # noqa: E402
    MODEL,
    REF_BUCKET,
    ROOT,
    TEAM,
    USER,
    assay_env,
    create_principals,
    http,
    log,
    manage,
    multipart,
    storage_env,
)
from report import all_steps, print_report, verdicts  # noqa: E402

BENCH = ROOT / "benchmarks"


# ---------------------------------------------------------------------------------------------
# Loads


def probe(load: str, base_url: str, token: str, onnx_base: bytes, trailer: int, extra: dict) -> tuple[bool, str]:
    """Register one version by hand, so a broken endpoint is reported clearly before any load."""
    url = f"{base_url}/api/v1/models/{MODEL}/versions/"
    uid = secrets.token_hex(8)
    if load == "json":
        body = json.dumps(
            {"artifact_uri": f"s3://{REF_BUCKET}/probe/{uid}/model.onnx", "sha256": secrets.token_hex(32), **extra}
        ).encode()
        status, data = http("POST", url, token=token, body=body, content_type="application/json")
    else:
        data_bytes = onnx_payload.with_trailer(onnx_base, f"probe {uid}".ljust(trailer, ".").encode())
        body, ctype = multipart({"format": "onnx"}, "artifact", "model.onnx", data_bytes)
        status, data = http("POST", url, token=token, body=body, content_type=ctype)
    return status == 201, f"{status} {json.dumps(data)[:600]}"


class Driver:
    """The one load generator of a run: drives every server the same way (``--generator``, ``--keep-alive``)."""

    def __init__(self, kind: str, keep_alive: bool, work: Path):
        self.kind, self.keep_alive, self.lua = kind, keep_alive, work / "lua"
        self.lua.mkdir(parents=True, exist_ok=True)
        self.wrk = loadgen.ensure_wrk() if kind == "wrk" else None

    @property
    def name(self) -> str:
        connections = "a keep-alive connection per client" if self.keep_alive else "a new connection per request"
        return f"{self.kind} closed loop, {connections}"

    def other(self) -> Driver:
        """The other generator, same connection handling: to check that the generator does not limit a server."""
        return Driver("asyncio" if self.kind == "wrk" else "wrk", self.keep_alive, self.lua.parent)

    def run(self, load: loadgen.Load, script: Path, url: str, *, clients: int, duration: float, label: str, threads=1):
        if self.kind == "asyncio":
            return loadgen.run_asyncio(
                url, load, concurrency=clients, duration_s=duration, label=label, keep_alive=self.keep_alive
            )
        step = loadgen.run(
            self.wrk,
            script,
            url,
            concurrency=clients,
            duration_s=duration,
            label=label,
            expected=load.expected,
            threads=threads,
        )
        step.generator = "wrk" if self.keep_alive else "wrk, a connection per request"
        return step


def run_steps(
    driver: Driver,
    load: loadgen.Load,
    script: Path,
    url: str,
    args: argparse.Namespace,
    label: str,
    server_pgid: int,
    database: str,
) -> list[loadgen.Step]:
    """Warm up, then measure, at each concurrency; print each step as it finishes."""
    steps = []
    for clients in args.concurrency:
        if args.warmup > 0:
            driver.run(load, script, url, clients=clients, duration=args.warmup, label="warmup")
        before, started = servers.cpu_snapshot(), time.monotonic()
        step = driver.run(
            load, script, url, clients=clients, duration=args.duration, label=label, threads=args.wrk_threads
        )
        elapsed = time.monotonic() - started
        after = servers.cpu_snapshot()
        step.cpu_cores = servers.cpu_split(before, after, server_pgid, elapsed, database)
        step.server_process_cores = servers.cpu_by_server_process(before, after, server_pgid, elapsed)
        bad = f", {step.not_ok} not {load.expected}: {step.codes}" if step.not_ok else ""
        errs = f", socket errors {step.socket_errors}" if step.socket_errors else ""
        busy = f"  [cores busy: {step.cpu_cores}; per server process {step.server_process_cores[:8]}]"
        log(
            f"  {label:<22} {clients:>3} clients: {step.rate:8.1f}/s  p50 {step.p50_ms:7.1f} ms  "
            f"p99 {step.p99_ms:7.1f} ms{bad}{errs}{busy}"
        )
        for sample in step.samples[:2]:
            log(f"    e.g. {sample[:300]!r}")
        steps.append(step)
    return steps


def bench_assay(args, work, env, token_holder, configs, driver: Driver, onnx_base, trailer) -> dict:
    """Every server configuration x both loads; returns {config: {load: [steps]}}."""
    results: dict = {}
    path = f"/api/v1/models/{MODEL}/versions/"
    token = token_holder["token"]
    loads = {
        "json": (
            loadgen.assay_json_load(path=path, token=token, bucket=REF_BUCKET, extra_fields=args.json_extra),
            loadgen.json_script(
                driver.lua,
                path=path,
                token=token,
                bucket=REF_BUCKET,
                extra_fields=args.json_extra,
                keep_alive=driver.keep_alive,
            ),
        ),
        "multipart": (
            loadgen.assay_multipart_load(
                path=path, token=token, onnx_base=onnx_base, trailer=trailer, fields={"format": "onnx"}
            ),
            loadgen.multipart_script(
                driver.lua,
                path=path,
                token=token,
                onnx_base=onnx_base,
                trailer=trailer,
                fields={"format": "onnx"},
                keep_alive=driver.keep_alive,
            ),
        ),
    }
    for config in configs:
        results[config.label] = {}
        for load in args.loads:
            server_env = {**env, **storage_env(load, work)}
            log(f"{config.label} ({load}: ASSAY_STORAGE_URL={server_env['ASSAY_STORAGE_URL']})")
            tag = f"{config.label}-{load}".replace(":", "-")
            server = servers.start_server(config, server_env, work / "logs", tag)
            try:
                if not token_holder.get("model"):
                    status, data = http(
                        "POST",
                        server.base_url + "/api/v1/models/",
                        token=token,
                        body=json.dumps(
                            {"name": MODEL, "owner_team": TEAM, "risk_tier": "limited", "description": "benchmark"}
                        ).encode(),
                        content_type="application/json",
                    )
                    if status != 201:
                        raise SystemExit(f"could not create the model through the API: {status} {data}")
                    token_holder["model"] = True
                ok, detail = probe(load, server.base_url, token, onnx_base, trailer, args.json_extra)
                if not ok:
                    log(f"  one {load} registration by hand failed, skipping this load: {detail}")
                    results[config.label][load] = {"error": detail}
                    continue
                spec, script = loads[load]
                steps = run_steps(
                    driver, spec, script, server.base_url, args, f"assay {load}", server.proc.pid, args.db
                )
                results[config.label][load] = [s.as_dict() for s in steps]
            finally:
                server.stop()
    return results


def bench_mlflow(args, work, driver: Driver, workers: int) -> dict:
    """The same JSON load against MLflow's create-model-version endpoint, or why it was skipped.

    Unless ``--no-generator-check``, the other generator drives it too, right after, at the same numbers of clients.
    """
    venv = Path(args.mlflow_venv)
    usable, message = servers.ensure_mlflow_venv(venv, BENCH / "requirements-mlflow.txt")
    if not usable:
        log(f"MLflow comparison skipped: {message}")
        return {"skipped": message}
    version = servers.mlflow_version(venv)
    db_url = servers.recreate_database(args.pg, args.mlflow_db)
    db_url = "postgresql+psycopg2://" + db_url.split("://", 1)[1]  # the driver pinned in requirements-mlflow.txt
    log(f"MLflow {version} server on PostgreSQL database {args.mlflow_db}, {workers} workers")
    server = servers.start_mlflow(venv, db_url, workers, work / "logs", f"s3://{REF_BUCKET}/mlflow")
    check: list = []
    try:
        status, data = http(
            "POST",
            server.base_url + "/api/2.0/mlflow/registered-models/create",
            body=json.dumps({"name": MODEL}).encode(),
            content_type="application/json",
        )
        if status != 200:
            return {"skipped": f"could not create the registered model: {status} {data}", "version": version}
        path = "/api/2.0/mlflow/model-versions/create"
        load = loadgen.mlflow_json_load(path=path, model=MODEL, bucket=REF_BUCKET)
        script = loadgen.json_script(
            driver.lua, path=path, token=None, bucket=REF_BUCKET, mlflow_model=MODEL, keep_alive=driver.keep_alive
        )
        steps = run_steps(driver, load, script, server.base_url, args, "mlflow json", server.proc.pid, args.mlflow_db)
        other = None
        if not args.no_generator_check:
            try:
                other = driver.other()
            except (SystemExit, OSError, subprocess.SubprocessError) as exc:  # wrk could not be installed
                log(f"  generator check skipped: {exc}")
        if other is not None:
            log(f"  the same load on MLflow from the other generator ({other.name}):")
            check = run_steps(
                other,
                load,
                script,
                server.base_url,
                args,
                f"mlflow json ({other.kind})",
                server.proc.pid,
                args.mlflow_db,
            )
    finally:
        server.stop()
    return {
        "version": version,
        "workers": workers,
        "server": "mlflow server (its default uvicorn)",
        "json": [s.as_dict() for s in steps],
        "generator_check": [s.as_dict() for s in check],
    }


def database_stats(env: dict) -> dict:
    """What the run left in the database: versions, audit events by action, jobs by status."""
    code = (
        "import json\n"
        "from django.db.models import Count\n"
        "from apps.audit.models import AuditEvent\n"
        "from apps.jobs.models import Job\n"
        "from apps.registry.models import ModelVersion\n"
        "print(json.dumps({'versions': ModelVersion.objects.count(),"
        " 'versions_by_status': dict(ModelVersion.objects.values_list('status').annotate(n=Count('id'))),"
        " 'audit_events': dict(AuditEvent.objects.values_list('action').annotate(n=Count('id'))),"
        " 'audit_unsealed': AuditEvent.objects.filter(seq__isnull=True).count(),"
        " 'jobs': dict(Job.objects.values_list('status').annotate(n=Count('id')))}))\n"
    )
    result = manage(env, "shell", "-c", code, check=False)
    if result.returncode != 0:
        return {"error": result.stderr.strip()[-500:]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_audit_bench(args, env: dict) -> dict:
    """benchmarks/audit_bench.py (written separately) on a database of its own; its output is kept as it is."""
    script = BENCH / "audit_bench.py"
    if not script.exists():
        return {"skipped": "benchmarks/audit_bench.py is not there"}
    database_url = servers.recreate_database(args.pg, args.audit_db)
    log(f"audit_bench.py on PostgreSQL database {args.audit_db}")
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(script), *args.audit_args],
        cwd=ROOT,
        env={**env, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    report: dict = {
        "exit_code": result.returncode,
        "seconds": round(time.monotonic() - started, 1),
        "output": result.stdout[-6000:],
        "events_per_second": {},
    }
    if result.returncode != 0:
        report["stderr"] = result.stderr[-3000:]
    for line in result.stdout.rstrip().splitlines():
        print(f"    {line}")
        name = re.match(r"^(\w+):", line.strip())
        rates = re.findall(r"([\d,.]+) events/s", line)
        if name and rates:
            report["events_per_second"][name.group(1)] = float(rates[-1].replace(",", ""))
    return report


# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10, help="seconds measured per step (default 10)")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of warm-up before each step (default 3)")
    parser.add_argument(
        "--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 32], help="e.g. 1,8,32"
    )
    parser.add_argument(
        "--servers",
        type=lambda s: [servers.ServerConfig.parse(x) for x in s.split(",")],
        default=[servers.ServerConfig("granian", cores, 2), servers.ServerConfig("sync", 2 * cores + 1)],
        help=f"server configurations, e.g. granian:{cores}x2,sync:{2 * cores + 1},gthread:{2 * cores + 1}x4,uwsgi:5",
    )
    parser.add_argument("--loads", type=lambda s: s.split(","), default=["json", "multipart"], help="json,multipart")
    parser.add_argument(
        "--json-extra",
        type=json.loads,
        default={"format": "onnx"},
        help='extra JSON fields for each registration (default {"format": "onnx"}: a reference names its format)',
    )
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres", help="admin connection")
    parser.add_argument("--db", default="assay_bench")
    parser.add_argument("--mlflow-db", default="mlflow_bench")
    parser.add_argument("--audit-db", default="assay_bench_audit")
    parser.add_argument(
        "--audit-args", type=lambda s: s.split(), default=[], help="arguments for audit_bench.py, e.g. '--events 50000'"
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra environment variable for Assay's server (repeatable), e.g. DATABASE_CONN_HEALTH_CHECKS=0",
    )
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--cache", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--mlflow-venv", default=os.environ.get("ASSAY_MLFLOW_VENV", "/var/cache/assay/mlflow-venv"))
    parser.add_argument("--no-mlflow", action="store_true", help="skip the MLflow comparison")
    parser.add_argument("--no-audit", action="store_true", help="skip benchmarks/audit_bench.py")
    parser.add_argument(
        "--generator",
        choices=["asyncio", "wrk"],
        default="asyncio",
        help="the load generator for every server (default asyncio: benchmarks/loadgen.py run_asyncio)",
    )
    parser.add_argument(
        "--keep-alive",
        action="store_true",
        help="keep one connection per client (default: a new connection per request, which reaches every worker)",
    )
    parser.add_argument(
        "--no-generator-check", action="store_true", help="do not drive MLflow with the other generator as well"
    )
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (one event loop is plenty here)")
    parser.add_argument("--work", default="/tmp/assay-bench", help="scratch folder (logs, uploads, keys)")
    parser.add_argument("--output", default=str(BENCH / "results" / "latest.json"))
    parser.add_argument("--max-load", type=float, default=1.0, help="wait for a load average below this first")
    parser.add_argument("--quiet-wait", type=float, default=120, help="seconds to wait for that at most")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(args.work)
    if work.exists():
        subprocess.run(["rm", "-rf", str(work)], check=True)
    (work / "logs").mkdir(parents=True)
    driver = Driver(args.generator, args.keep_alive, work)
    load = servers.load_average()
    if load >= args.max_load:
        log(f"load average {load:.2f}: waiting up to {args.quiet_wait:.0f} s for the machine to quieten")
        load = servers.wait_for_quiet(args.max_load, args.quiet_wait)
    onnx_base, trailer = onnx_payload.build()
    onnx_payload.self_check(onnx_base, trailer)

    pg_version = servers.server_version(args.pg)
    database_url = servers.recreate_database(args.pg, args.db)
    servers.flush_redis(args.broker)
    servers.flush_redis(args.cache)
    env = assay_env(args, work, database_url)
    for item in args.server_env:
        name, _, value = item.partition("=")
        env[name] = value
    if args.server_env:
        log(f"server environment: {', '.join(args.server_env)}")
    log(f"database {args.db} on PostgreSQL {pg_version}: migrating")
    manage(env, "migrate", "--noinput")
    token, how = create_principals(env)
    log(f"team {TEAM!r}, user {USER!r} (contributor on the team) and token created with the {how}")

    report: dict = {
        "meta": {
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "commit": subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
            ).stdout.strip(),
            "machine": machine.describe(),
            "python": platform.python_version(),
            "postgresql": pg_version,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "concurrency": args.concurrency,
            "generator": driver.name,
            "artifact_bytes": len(onnx_base) + 2 + trailer,
            "setup": how,
            "load_average_at_start": load,
            "principal": f"user {USER} with a token (read, registry:write), contributor on team {TEAM}",
        },
        "notes": [],
    }
    holder = {"token": token}
    log(machine.line(report["meta"]["machine"]))
    report["assay"] = bench_assay(args, work, env, holder, args.servers, driver, onnx_base, trailer)
    report["database"] = database_stats(env)
    queued = servers.redis_len(args.broker)
    report["database"]["celery_messages_queued"] = queued
    report["notes"].append(
        f"no Celery worker was started: the {report['database'].get('jobs', {}).get('queued', '?')} verification "
        f"jobs stay queued ({queued} messages waiting in {args.broker}); referenced s3:// artifacts are not fetched"
    )
    if not args.no_audit:
        report["audit_bench"] = run_audit_bench(args, env)
    if not args.no_mlflow:
        workers = next((c.workers for c in args.servers if c.kind == "sync"), args.servers[0].workers)
        try:
            report["mlflow"] = bench_mlflow(args, work, driver, workers)
        except Exception as exc:  # the comparison is optional; say why it is missing
            log(f"MLflow comparison failed: {exc}")
            report["mlflow"] = {"skipped": f"failed: {str(exc)[:800]}"}
        if report["mlflow"].get("json"):
            report["notes"].append(
                "MLflow runs without authentication, permission checks or an audit trail; "
                "Assay's figures include token authentication, rbac, validation, the audit event and a queued job"
            )
    report["verdicts"] = verdicts(report)
    busiest = max(
        (s["cpu_cores"].get("others", 0) for s in all_steps(report)),
        default=0,
    )
    if busiest > 0.2:
        report["notes"].append(
            f"other processes kept up to {busiest:.2f} cores busy during a step: the figures are lower than on "
            "an idle machine (see cpu_cores per step)"
        )
    report["meta"]["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    report["meta"]["machine_at_end"] = machine.describe()
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print_report(report)
    print(f"\nfigures written to {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
