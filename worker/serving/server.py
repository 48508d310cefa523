"""One serving process: an approved model version answering the V2 / Open Inference Protocol on 127.0.0.1.

    python -m worker.serving.server --artifact PATH --format onnx --digest HEX --name SERVICE \\
        --model-version 3 --port 18001

The process hashes the artifact before anything else and refuses to start (exit status 2, the reason on
stderr) when its sha256 is not ``--digest``; a model that does not load exits with status 3. Then it answers:

- ``GET /v2/health/live``, ``GET /v2/health/ready``, ``GET /v2`` (server metadata);
- ``GET /v2/models/{name}`` (metadata: name, versions, platform, inputs, outputs) and ``.../ready``;
- ``POST /v2/models/{name}/infer`` (also under ``/v2/models/{name}/versions/{version}/``);
- ``GET /metrics``: Prometheus text (requests, errors by status, a latency histogram, ``assay_model_info``).

A request the model cannot take is a 400 with ``{"error": "..."}``; a model that raises is a 500; nothing a
caller sends stops the process. Inference runs on the event loop's thread (``--threads 0``, the default: no
hand-off, the lowest latency) or on a pool of threads (onnxruntime and the tree libraries release the GIL).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from worker.serving import rsgi
from worker.serving.metrics import Histogram, labels
from worker.serving.model import ServedModel
from worker.serving.tensors import BadRequest, ModelFailed, output_tensor, parse_request

MAX_BODY = 16 * 1024 * 1024
MAX_ROWS = 100_000


class ServingApp:
    """The RSGI application of one served version; counters for ``/metrics`` live here."""

    def __init__(self, model: ServedModel, *, name: str, version: str, threads: int = 0) -> None:
        self.model, self.name, self.version = model, name, version
        base = f"/v2/models/{name}"
        pinned = f"{base}/versions/{version}"
        self.infer_paths = {f"{base}/infer", f"{pinned}/infer"}
        self.meta_paths = {base, pinned}
        self.ready_paths = {f"{base}/ready", f"{pinned}/ready"}
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="infer") if threads > 0 else None
        self.requests = 0
        self.rows = 0
        self.errors: Counter[int] = Counter()
        self.latency = Histogram()
        self.started = time.time()
        self.metadata = {
            "name": name,
            "versions": [version],
            "platform": model.platform,
            "inputs": [{"name": "input", "datatype": model.input_datatype, "shape": [-1, model.width or -1]}],
            "outputs": model.outputs,
            "parameters": {"digest": model.digest, "format": model.fmt},
        }

    async def __rsgi__(self, scope, proto) -> None:
        try:
            await self._route(scope, proto)
        except Exception:  # never let a request take the process down; say so in the log
            rsgi.log.exception("unexpected error answering %s %s", scope.method, scope.path)
            with contextlib.suppress(Exception):  # the answer may already have been sent
                rsgi.error(proto, 500, "internal error in the serving process")

    async def _route(self, scope, proto) -> None:
        path, method = scope.path, scope.method
        if path in self.infer_paths:
            if method != "POST":
                return rsgi.error(proto, 405, "infer takes POST")
            return await self._infer(scope, proto)
        if path.startswith("/v2/models/") and path not in self.meta_paths and path not in self.ready_paths:
            return rsgi.error(proto, 404, f"this process serves model {self.name!r} version {self.version!r} only")
        if method != "GET":
            return rsgi.error(proto, 405, f"{path} takes GET")
        if path in ("/v2/health/live", "/v2/health/ready") or path in self.ready_paths:
            return rsgi.answer(proto, 200, {"live": True} if path.endswith("live") else {"ready": True})
        if path in self.meta_paths:
            return rsgi.answer(proto, 200, self.metadata)
        if path == "/metrics":
            return proto.response_str(200, rsgi.TEXT, self.metrics_text())
        if path == "/v2":
            return rsgi.answer(proto, 200, {"name": "assay-serving", "version": "2", "extensions": []})
        return rsgi.error(proto, 404, f"no route {path}")

    async def _infer(self, scope, proto) -> None:
        started = time.perf_counter()
        self.requests += 1
        status, doc = 200, None
        try:
            body = await rsgi.read_body(scope, proto, MAX_BODY)
            if body is None:
                status = 413
                return
            features, request_id, wanted = parse_request(body, max_rows=MAX_ROWS)
            if self.pool is None:
                outputs = self.model.predict(features)
            else:
                outputs = await asyncio.get_running_loop().run_in_executor(self.pool, self.model.predict, features)
            if wanted is not None:
                unknown = sorted(set(wanted) - {n for n, _ in outputs})
                if unknown:
                    raise BadRequest(f"the model has no output(s) {unknown}; it gives {[n for n, _ in outputs]}")
                outputs = [(n, a) for n, a in outputs if n in wanted]
            self.rows += features.shape[0]
            doc = {
                "model_name": self.name,
                "model_version": self.version,
                "id": request_id or uuid.uuid4().hex,
                "outputs": [output_tensor(n, a) for n, a in outputs],
            }
        except BadRequest as exc:
            status, doc = exc.status, {"error": str(exc)}
        except ModelFailed as exc:
            rsgi.log.warning("%s", exc)
            status, doc = 500, {"error": str(exc)}
        except Exception:
            rsgi.log.exception("unexpected error in infer")
            status, doc = 500, {"error": "internal error in the serving process"}
        finally:
            if status != 200:
                self.errors[status] += 1
            self.latency.observe(time.perf_counter() - started)
        rsgi.answer(proto, status, doc)

    def metrics_text(self) -> str:
        info = labels(model=self.name, version=self.version, digest=self.model.digest, format=self.model.fmt)
        out = [
            "# HELP assay_model_info The served version and its artifact's sha256 (as hashed by this process).",
            "# TYPE assay_model_info gauge",
            f"assay_model_info{{{info}}} 1",
            "# HELP assay_model_ready 1 once the model is loaded and answering.",
            "# TYPE assay_model_ready gauge",
            "assay_model_ready 1",
            "# HELP assay_inference_requests_total Infer requests received.",
            "# TYPE assay_inference_requests_total counter",
            f"assay_inference_requests_total {self.requests}",
            "# HELP assay_inference_rows_total Rows scored.",
            "# TYPE assay_inference_rows_total counter",
            f"assay_inference_rows_total {self.rows}",
            "# HELP assay_inference_errors_total Infer requests answered with an error, by HTTP status.",
            "# TYPE assay_inference_errors_total counter",
        ]
        out += [f'assay_inference_errors_total{{status="{s}"}} {n}' for s, n in sorted(self.errors.items())]
        out += [
            "# HELP assay_inference_latency_seconds Time to answer an infer request, in this process.",
            "# TYPE assay_inference_latency_seconds histogram",
            *self.latency.lines("assay_inference_latency_seconds"),
            "# HELP assay_process_start_time_seconds When this process started (Unix time).",
            "# TYPE assay_process_start_time_seconds gauge",
            f"assay_process_start_time_seconds {self.started!r}",
        ]
        return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve one approved model version over the V2 protocol.")
    parser.add_argument("--artifact", required=True, help="the artifact file")
    parser.add_argument("--format", required=True, choices=["onnx", "skops", "xgboost", "lightgbm"])
    parser.add_argument("--digest", required=True, help="the approved sha256 (hex) the file must hash to")
    parser.add_argument("--name", required=True, help="the model name in V2 paths (the service)")
    parser.add_argument("--model-version", required=True, help="the version label answered as model_version")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=0, help="inference threads (0: on the event loop)")
    args = parser.parse_args(argv)

    from worker.engines.loaders import LoadError
    from worker.serving.model import DigestRefused, load_served

    try:
        model = load_served(args.artifact, args.format, args.digest)
    except DigestRefused as exc:
        print(f"refusing to start: {exc}", file=sys.stderr, flush=True)
        return 2
    except (LoadError, OSError) as exc:
        print(f"refusing to start: the model does not load: {exc}", file=sys.stderr, flush=True)
        return 3
    app = ServingApp(model, name=args.name, version=args.model_version, threads=args.threads)
    rsgi.serve(app, args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
