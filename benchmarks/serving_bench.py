"""The local target's serving path against a bare onnxruntime session, on the same model and inputs, in one run.

    .venv/bin/python benchmarks/serving_bench.py [--duration 5] [--models small,forest] [--threads 0]

For each model (``small``: a 4-feature logistic regression scoring 1 row; ``forest``: a 200-tree random forest
on 20 features scoring 16 rows; both converted by skl2onnx):

- ``bare``: ``InferenceSession.run`` on the prepared numpy input (the session the server builds: one intra-op
  thread), timed in this process: p50/p99 of 1 caller, and calls per second from 8 threads;
- ``server``: ``python -m worker.serving.server`` answering V2 requests (JSON in, JSON out) over HTTP;
- ``router``: the same request through ``python -m worker.serving.router`` in front of that server.

HTTP load comes from ``benchmarks/loadgen.py``'s asyncio generator (kept-alive connections, closed loop):
1 client for latency, 8 clients for throughput. The targets: p50 within 1 ms of bare, and at 8 clients at least
80 % of bare throughput. The steps run one after another; during an HTTP step the load generator (in this
process) shares the machine's cores with the server, while the bare step has them to itself.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import loadgen, machine  # noqa: E402

SERVICE = "bench"
# (trees, depth, rows per request) of the random forests; "small" is a logistic regression scoring 1 row
FORESTS = {"forest": (200, 8, 16), "large": (300, 10, 32)}
DESCRIBED = {
    "small": "logistic regression, 4 features, 1 row per request",
    "forest": "random forest, 200 trees of depth 8, 20 features, 16 rows per request",
    "large": "random forest, 300 trees of depth 10, 20 features, 32 rows per request",
}


def build_model(kind: str, folder: Path) -> tuple[Path, str, np.ndarray]:
    """(ONNX file, its sha256, the input every request sends) for ``small`` or ``forest``."""
    from skl2onnx import to_onnx

    rng = np.random.default_rng(0)
    if kind == "small":
        from sklearn.linear_model import LogisticRegression

        x = rng.normal(size=(400, 4)).astype(np.float32)
        model = LogisticRegression().fit(x, (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int))
        batch = x[:1]
    else:
        from sklearn.ensemble import RandomForestClassifier

        trees, depth, rows = FORESTS[kind]
        x = rng.normal(size=(4000, 20)).astype(np.float32)
        y = (x[:, 0] + 0.5 * x[:, 1] - x[:, 2] * x[:, 3] > 0).astype(int)
        model = RandomForestClassifier(n_estimators=trees, max_depth=depth, n_jobs=1, random_state=0).fit(x, y)
        batch = x[:rows]
    data = to_onnx(model, x[:1], options={"zipmap": False}).SerializeToString()
    path = folder / f"{kind}.onnx"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest(), np.ascontiguousarray(batch)


def bare(path: Path, batch: np.ndarray, seconds: float) -> dict:
    """p50/p99 of one caller and the call rate of 8 threads, on the session the server builds."""
    from worker.engines.loaders import onnx_session

    session = onnx_session(path)
    feed = {session.get_inputs()[0].name: batch}
    names = [o.name for o in session.get_outputs()]
    for _ in range(200):
        session.run(names, feed)
    latencies, deadline = [], time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        session.run(names, feed)
        latencies.append(time.perf_counter() - started)
    latencies.sort()
    counts = [0] * 8
    stop = threading.Event()

    def caller(i: int) -> None:
        while not stop.is_set():
            session.run(names, feed)
            counts[i] += 1

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(8)]
    begun = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - begun
    return {
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "rate": sum(counts) / elapsed,
    }


def start(args: list[str], log: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "controlplane.settings"}
    env.setdefault("DJANGO_SECRET_KEY", "benchmark-only")
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", *args, f"--port={port}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{args[0]} exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1) as answer:
                if answer.status == 200:
                    return proc
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{args[0]} did not answer: {log.read_text()[-2000:]}")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url: str, load: loadgen.Load, seconds: float, label: str) -> dict:
    one = loadgen.run_asyncio(url, load, concurrency=1, duration_s=seconds, label=label, keep_alive=True)
    eight = loadgen.run_asyncio(url, load, concurrency=8, duration_s=seconds, label=label, keep_alive=True)
    for step in (one, eight):
        if step.not_ok or step.socket_errors:
            raise SystemExit(f"{label}: {step.not_ok} bad answers, {step.socket_errors}: {step.samples}")
    return {"p50_ms": one.p50_ms, "p99_ms": one.p99_ms, "rate": eight.rate, "p50_8_ms": eight.p50_ms}


def run_model(kind: str, folder: Path, seconds: float, threads: int) -> list[tuple[str, dict]]:
    path, digest, batch = build_model(kind, folder)
    body = json.dumps(
        {"inputs": [{"name": "x", "shape": list(batch.shape), "datatype": "FP32", "data": batch.ravel().tolist()}]}
    ).encode()
    load = loadgen.Load(
        path=f"/v2/models/{SERVICE}/infer",
        headers={"Content-Type": "application/json"},
        body=lambda tag, client, n: body,
        expected=200,
    )
    rows = [("bare onnxruntime", bare(path, batch, seconds))]
    procs = []
    try:
        server_port, router_port = free_port(), free_port()
        server_args = ["worker.serving.server", f"--artifact={path}", "--format=onnx", f"--digest={digest}"]
        server_args += [f"--name={SERVICE}", "--model-version=1", f"--threads={threads}"]
        procs.append(start(server_args, folder / "server.log", server_port))
        rows.append(("server (V2 over HTTP)", http(f"http://127.0.0.1:{server_port}", load, seconds, "server")))
        token = "benchmark-token-0123456789abcdef"
        (folder / "router.token").write_text(token)
        procs.append(start(["worker.serving.router", f"--state-dir={folder}"], folder / "router.log", router_port))
        member = {"version_id": "v1", "version": "1", "digest": digest, "port": server_port, "weight": 100}
        request = urllib.request.Request(
            f"http://127.0.0.1:{router_port}/admin/v1/services/{SERVICE}",
            data=json.dumps({"fence": 1, "model": SERVICE, "members": [member]}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            method="PUT",
        )
        urllib.request.urlopen(request, timeout=5).close()
        rows.append(("router -> server", http(f"http://127.0.0.1:{router_port}", load, seconds, "router")))
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per step")
    parser.add_argument("--models", default="small,forest,large")
    parser.add_argument("--threads", type=int, default=0, help="the server's inference threads (0: event loop)")
    args = parser.parse_args()
    print(machine.line(machine.describe()), flush=True)
    print("targets: p50 within 1 ms of bare (1 client); throughput at 8 clients >= 80 % of bare (8 threads)")
    for kind in args.models.split(","):
        with tempfile.TemporaryDirectory(prefix="assay-serving-bench-") as tmp:
            rows = run_model(kind, Path(tmp), args.duration, args.threads)
        bare_row = rows[0][1]
        print(f"\nmodel {kind}: {DESCRIBED[kind]} (server inference threads: {args.threads})")
        print(f"{'path':24} {'p50 ms':>8} {'p99 ms':>8} {'8 clients/s':>12}  {'p50 - bare':>10} {'vs bare':>8}")
        for label, row in rows:
            gap = row["p50_ms"] - bare_row["p50_ms"]
            share = row["rate"] / bare_row["rate"] * 100
            verdict = (
                ""
                if label.startswith("bare")
                else (f"  p50 {'ok' if gap <= 1.0 else 'MISSED'}, throughput {'ok' if share >= 80 else 'MISSED'}")
            )
            print(
                f"{label:24} {row['p50_ms']:8.3f} {row['p99_ms']:8.3f} {row['rate']:12.0f}  "
                f"{gap:+10.3f} {share:7.0f}%{verdict}"
            )


if __name__ == "__main__":
    main()
