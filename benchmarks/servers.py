"""The servers a benchmark run starts and stops: PostgreSQL databases, Granian, gunicorn, uWSGI, MLflow.

Everything here listens on 127.0.0.1 only and is stopped by the process that
started it (by its own process group), never by name.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def recreate_database(admin_url: str, name: str) -> str:
    """Drop and create database ``name`` on the server of ``admin_url``; return its URL."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + "/" + name


def server_version(admin_url: str) -> str:
    import psycopg

    with psycopg.connect(admin_url) as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


def load_average() -> float:
    """The one-minute load average: other work on this machine skews the figures."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return -1.0


def wait_for_quiet(max_load: float, timeout_s: float) -> float:
    """Wait (up to ``timeout_s``) until the one-minute load average drops below ``max_load``."""
    deadline = time.monotonic() + timeout_s
    load = load_average()
    while load >= max_load and time.monotonic() < deadline:
        time.sleep(5)
        load = load_average()
    return load


def cpu_snapshot() -> dict[int, tuple[int, str, int]]:
    """pid -> (process group, command, CPU clock ticks used so far) for every process."""
    snap = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        snap[int(entry.name)] = (int(fields[2]), comm, int(fields[11]) + int(fields[12]))
    return snap


def _postgres_database(pid: int) -> str | None:
    """The database a PostgreSQL backend serves ("postgres: 15/main: USER DB ADDR ..."), None for helpers."""
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    parts = title.split(": ", 2)
    if len(parts) < 3:
        return None
    words = parts[2].split()
    return words[1] if len(words) >= 3 and ("(" in words[2] or words[2] == "[local]") else None


def cpu_split(before: dict, after: dict, server_pgid: int, seconds: float, database: str = "") -> dict[str, float]:
    """Cores kept busy between two snapshots by the server under test, the load generator, PostgreSQL and the rest.

    ``loadgen`` is wrk or this process (the asyncio generator runs here); ``postgres`` counts the backends of
    ``database`` and PostgreSQL's own helpers (WAL writer, checkpointer, ...); backends serving other databases
    (someone else's tests) count as ``others``.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    split = {"server": 0.0, "loadgen": 0.0, "postgres": 0.0, "others": 0.0}
    here = os.getpid()
    for pid, (pgrp, comm, used) in after.items():
        delta = used - (before[pid][2] if pid in before else 0)
        if delta <= 0:
            continue
        if pgrp == server_pgid:
            key = "server"
        elif comm == "wrk" or pid == here:
            key = "loadgen"
        elif comm.startswith("postgres"):
            served = _postgres_database(pid)
            key = "postgres" if served is None or not database or served == database else "others"
        else:
            key = "others"
        split[key] += delta / ticks
    return {k: round(v / seconds, 2) for k, v in split.items()} if seconds > 0 else split


def cpu_by_server_process(before: dict, after: dict, server_pgid: int, seconds: float) -> list[float]:
    """Cores each process of the server kept busy, busiest first: shows whether the load reached every worker."""
    ticks = os.sysconf("SC_CLK_TCK")
    busy = [
        (used - (before[pid][2] if pid in before else 0)) / ticks / seconds
        for pid, (pgrp, _comm, used) in after.items()
        if pgrp == server_pgid and seconds > 0
    ]
    return sorted((round(b, 2) for b in busy), reverse=True)


def flush_redis(url: str) -> None:
    """Empty the Redis database the run owns (its number is in the URL)."""
    import redis

    redis.Redis.from_url(url).flushdb()


def redis_len(url: str, key: str = "celery") -> int:
    import redis

    return int(redis.Redis.from_url(url).llen(key))


def wait_http(url: str, *, timeout_s: float, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    """Poll ``url`` until it answers (any status below 500)."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
            last = f"HTTP {exc.code}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.25)
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    raise RuntimeError(f"{url} did not answer within {timeout_s:.0f}s ({last})\n{tail}")


@dataclass
class Server:
    """A server process we started, in its own process group."""

    name: str
    proc: subprocess.Popen
    base_url: str
    log: Path

    def stop(self, timeout_s: float = 20) -> None:
        if self.proc.poll() is not None:
            return
        pgid = os.getpgid(self.proc.pid)
        os.killpg(pgid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        # Workers of the group may outlive the arbiter by a moment.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)


@dataclass(frozen=True)
class ServerConfig:
    """Which WSGI server serves and how.

    ``granian:2x2`` is Granian with 2 workers of 2 blocking threads each (the
    production shape: a worker per core); ``sync:5`` and ``gthread:5x4`` are
    gunicorn (5 sync workers; 5 workers of 4 threads); ``uwsgi:5`` is uWSGI with
    5 processes speaking HTTP itself, closing the connection after each answer
    (with keep-alive, a process serves one client until it disconnects and the
    others starve, which wrk's latency figures hide).
    """

    kind: str
    workers: int
    threads: int = 1

    @classmethod
    def parse(cls, text: str) -> ServerConfig:
        kind, _, size = text.partition(":")
        default_workers = 2 * (os.cpu_count() or 1) + 1
        if kind in ("sync", "uwsgi"):
            return cls(kind, int(size or default_workers))
        if kind in ("gthread", "granian"):
            workers, _, threads = (size or "").partition("x")
            default = (os.cpu_count() or 1) if kind == "granian" else default_workers
            return cls(kind, int(workers or default), int(threads or (2 if kind == "granian" else 4)))
        raise ValueError(f"unknown server config {text!r} (use sync:N, gthread:NxT, uwsgi:N or granian:NxT)")

    @property
    def label(self) -> str:
        threaded = self.kind in ("gthread", "granian")
        return f"{self.kind}:{self.workers}x{self.threads}" if threaded else f"{self.kind}:{self.workers}"

    def command(self, port: int, log: Path) -> list[str]:
        """The command line that serves ``controlplane.wsgi`` on 127.0.0.1:``port``."""
        bin_dir = Path(sys.executable).parent
        app = "controlplane.wsgi:application"
        if self.kind == "uwsgi":
            if not (bin_dir / "uwsgi").exists():  # measured for comparison; not a project dependency
                raise SystemExit(f"uwsgi is not installed: {bin_dir / 'pip'} install pyuwsgi")
            return [
                str(bin_dir / "uwsgi"),
                "--http-socket",
                f"127.0.0.1:{port}",
                "--add-header",
                "Connection: close",
                "--module",
                app,
                "--master",
                "--processes",
                str(self.workers),
                "--need-app",
                "--die-on-term",
                "--strict",
                "--listen",
                "1024",
                "--harakiri",
                "60",
                "--buffer-size",
                "32768",
                "--disable-logging",
                "--logto",
                str(log),
            ]
        if self.kind == "granian":
            return [
                str(bin_dir / "granian"),
                "--interface",
                "wsgi",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(self.workers),
                "--blocking-threads",
                str(self.threads),
                "--backlog",
                "2048",
                "--log-level",
                "warning",
                app,
            ]
        cmd = [
            str(bin_dir / "gunicorn"),
            app,
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(self.workers),
            "--worker-class",
            self.kind,
            "--backlog",
            "2048",
            "--timeout",
            "60",
            "--log-level",
            "warning",
            "--error-logfile",
            str(log),
        ]
        if self.kind == "gthread":
            cmd += ["--threads", str(self.threads)]
        return cmd


def start_server(config: ServerConfig, env: dict, logs: Path, tag: str) -> Server:
    """Start the WSGI server on a free loopback port with the project's virtualenv; wait for /api/v1/health/."""
    port = free_port()
    log = logs / f"{config.kind}-{tag}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            config.command(port, log), cwd=ROOT, env=env, stdout=out, stderr=out, start_new_session=True
        )
    server = Server(config.label, proc, f"http://127.0.0.1:{port}", log)
    try:
        wait_http(server.base_url + "/api/v1/health/", timeout_s=60, proc=proc, log=log)
    except Exception:
        server.stop()
        raise
    return server


def start_mlflow(venv: Path, backend_url: str, workers: int, logs: Path, artifact_root: str) -> Server:
    """Start ``mlflow server`` (its default uvicorn server) on a PostgreSQL backend store."""
    port = free_port()
    log = logs / "mlflow.log"
    cmd = [
        str(venv / "bin" / "mlflow"),
        "server",
        "--backend-store-uri",
        backend_url,
        "--default-artifact-root",
        artifact_root,
        "--no-serve-artifacts",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    env = {
        "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/root"),
        "MLFLOW_TRACKING_URI": "",
        # Its background job runner (huey consumers for GenAI jobs) is not part of the registry; like Assay's
        # Celery worker it is left off, so its start-up does not take CPU from the measurement.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "LANG": "C.UTF-8",
    }
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server("mlflow", proc, f"http://127.0.0.1:{port}", log)
    try:
        wait_http(server.base_url + "/health", timeout_s=180, proc=proc, log=log)
    except Exception:
        server.stop()
        raise
    return server


def ensure_mlflow_venv(venv: Path, requirements: Path) -> tuple[bool, str]:
    """Create the benchmark's own MLflow virtualenv (never the product's) and install the pinned MLflow.

    Returns (usable, message). A failed install only skips the comparison.
    """
    stamp = venv / ".assay-bench-requirements"
    wanted = requirements.read_text()
    python = venv / "bin" / "python"
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return True, f"MLflow from {venv}"
    try:
        if not python.exists():
            print(f"==> creating MLflow's own virtualenv in {venv}", flush=True)
            venv.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        print(f"==> installing {requirements.name} into {venv} (once)", flush=True)
        result = subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", "-r", str(requirements)],
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if result.returncode != 0:
            return False, f"pip install failed: {result.stderr.strip()[-500:]}"
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"could not create the MLflow virtualenv: {exc}"
    stamp.write_text(wanted)
    return True, f"MLflow from {venv}"


def mlflow_version(venv: Path) -> str:
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import mlflow; print(mlflow.__version__)"],
        capture_output=True,
        text=True,
    )
    return result.stdout.strip() or "unknown"
