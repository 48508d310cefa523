"""Where a version registration spends its time: queries per request and a profile.

    .venv/bin/python benchmarks/profile_registration.py [--mode json|multipart] [--requests 300]

Runs in one process, through Django's full request stack (middleware, DRF,
authentication, rbac, the service, audit, the job and its after-commit
dispatch), against the database a benchmark run left behind (``assay_bench``;
run ``benchmarks/run.sh`` first). Requests go straight to the WSGI application
with the environ a server such as gunicorn builds (``--client test`` uses
``django.test.Client`` instead, which adds its own signals, copies and checks
on every request, about a tenth of the total). It prints:

- every query of one registration, with its time;
- the mean wall time per registration and how much of it the database took;
- a cProfile of N registrations, sorted by cumulative and by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import secrets
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import machine  # noqa: E402
import onnx_payload  # noqa: E402
from assay_setup import multipart  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MODEL = "bench-model"
USER = "bench-ci"
BUCKET = "assay-bench-artifacts"


def setup(args: argparse.Namespace) -> None:
    storage = f"s3://{BUCKET}/assay" if args.mode == "json" else Path(args.work, "artifacts").as_uri()
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "controlplane.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
            "DJANGO_ALLOWED_HOSTS": "testserver,127.0.0.1",
            "DATABASE_URL": args.database_url,
            "CELERY_BROKER_URL": args.broker,
            "ASSAY_CACHE_URL": args.cache,
            # The load comes from one CI account on purpose: its per-principal rate limit would cap it.
            "ASSAY_USER_RATE": "off",
            "ASSAY_VAR_DIR": args.work,
            "ASSAY_ALLOWED_S3_BUCKETS": BUCKET,
            "ASSAY_STORAGE_URL": storage,
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench-secret",
            "AWS_EC2_METADATA_DISABLED": "true",
            "ASSAY_LOG_LEVEL": "WARNING",
        }
    )
    Path(args.work, "artifacts").mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def backend_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) a local PostgreSQL backend has used so far, from /proc."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # not on this machine
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_token() -> str:
    from apps.accounts import services as accounts
    from apps.accounts.models import User
    from apps.core.principals import Principal

    user = User.objects.get(username=USER)
    _, full = accounts.token_create(
        actor=Principal.system("assay-bench"), name="profile", user=user, scopes=["read", "registry:write"]
    )
    return full


class WsgiClient:
    """Calls the WSGI application as a server does: one environ per request, the body read from a stream."""

    def __init__(self, token: str) -> None:
        from django.core.wsgi import get_wsgi_application

        self.app = get_wsgi_application()
        self.token = token

    def post(self, url: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        environ = {
            "REQUEST_METHOD": "POST",
            "SCRIPT_NAME": "",
            "PATH_INFO": url,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1:8000",
            "HTTP_AUTHORIZATION": f"Bearer {self.token}",
            "HTTP_ACCEPT": "*/*",
            "CONTENT_TYPE": content_type,
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.version": (1, 0),
        }
        status: list[str] = []
        chunks = self.app(environ, lambda s, headers, exc_info=None: status.append(s))
        try:
            content = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()  # request_finished: Django's end-of-request connection handling
        return int(status[0].split()[0]), content


class Registrar:
    """Posts one distinct registration per call through the WSGI application (or the test client)."""

    def __init__(self, mode: str, token: str, client: str = "wsgi") -> None:
        self.mode = mode
        if client == "test":
            from django.test import Client

            self.client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", REMOTE_ADDR="127.0.0.1")
            self.wsgi = None
        else:
            self.wsgi = WsgiClient(token)
        self.url = f"/api/v1/models/{MODEL}/versions/"
        self.base, self.trailer = onnx_payload.build() if mode == "multipart" else (b"", 0)
        self.n = 0

    def __call__(self) -> int:
        self.n += 1
        uid = f"{secrets.token_hex(6)}-{self.n}"
        if self.wsgi is not None:
            if self.mode == "json":
                body = {
                    "artifact_uri": f"s3://{BUCKET}/profile/{uid}/model.onnx",
                    "sha256": secrets.token_hex(32),
                    "format": "onnx",
                }
                code, content = self.wsgi.post(self.url, json.dumps(body).encode(), "application/json")
            else:
                data = onnx_payload.with_trailer(self.base, f"profile {uid}".ljust(self.trailer, ".").encode())
                payload, ctype = multipart({"format": "onnx"}, "artifact", "model.onnx", data)
                code, content = self.wsgi.post(self.url, payload, ctype)
            if code != 201:
                raise SystemExit(f"registration answered {code}: {content[:500]!r}")
            return code
        if self.mode == "json":
            body = {
                "artifact_uri": f"s3://{BUCKET}/profile/{uid}/model.onnx",
                "sha256": secrets.token_hex(32),
                "format": "onnx",
            }
            response = self.client.post(self.url, data=json.dumps(body), content_type="application/json")
        else:
            from django.core.files.uploadedfile import SimpleUploadedFile

            data = onnx_payload.with_trailer(self.base, f"profile {uid}".ljust(self.trailer, ".").encode())
            upload = SimpleUploadedFile("model.onnx", data, content_type="application/octet-stream")
            response = self.client.post(self.url, data={"artifact": upload, "format": "onnx"})
        if response.status_code != 201:
            raise SystemExit(f"registration answered {response.status_code}: {response.content[:500]!r}")
        return response.status_code


def package_of(filename: str) -> str:
    """The package a profiled function belongs to: ``django.db``, ``rest_framework``, ``apps.audit``, ..."""
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins (C)"
    path = Path(filename)
    parts = path.parts
    if "site-packages" in parts:
        rest = parts[parts.index("site-packages") + 1 :]
    elif ROOT.as_posix() in filename:
        rest = path.relative_to(ROOT).parts
    else:
        return "stdlib:" + path.stem
    depth = 2 if rest[0] in ("django", "apps", "rest_framework", "psycopg") and len(rest) > 2 else 1
    return ".".join(rest[:depth]).removesuffix(".py")


def print_by_package(stats: pstats.Stats, requests: int) -> None:
    """Own time per package, per registration: where the CPU goes, without reading 300 rows."""
    totals: dict[str, float] = {}
    for (filename, _line, _name), (_cc, _nc, own, _cum, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        key = package_of(filename)
        totals[key] = totals.get(key, 0.0) + own
    whole = sum(totals.values())
    print(f"\n== own time by package, per registration (total {whole / requests * 1000:.2f} ms)")
    for key, own in sorted(totals.items(), key=lambda kv: -kv[1])[:30]:
        print(f"  {own / requests * 1000:6.3f} ms  {own / whole:5.1%}  {key}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["json", "multipart"], default="json")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/assay_bench")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--cache", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--work", default="/tmp/assay-bench-profile")
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--cpu", action="store_true", help="profile CPU time instead of wall time")
    parser.add_argument("--grep", default="", help="also list profile rows whose function matches these words")
    parser.add_argument("--callers", action="store_true", help="with --grep: who calls those functions, and how often")
    parser.add_argument(
        "--client",
        choices=["wsgi", "test"],
        default="wsgi",
        help="the WSGI application (default) or django.test.Client",
    )
    parser.add_argument("--full-paths", action="store_true", help="keep the profile's file paths")
    parser.add_argument("--no-profile", action="store_true", help="only the queries and the CPU per registration")
    args = parser.parse_args()
    setup(args)

    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    register = Registrar(args.mode, make_token(), args.client)
    for _ in range(20):  # warm caches, connections, imports
        register()

    with CaptureQueriesContext(connection) as ctx:
        register()
    print(machine.line())
    print(f"== queries of one {args.mode} registration: {len(ctx.captured_queries)}")
    for i, q in enumerate(ctx.captured_queries, 1):
        sql = q["sql"] or "(a statement whose text the debug cursor could not compose)"
        print(f"{i:>3}. {float(q['time']) * 1000:6.2f} ms  {sql[:260]}")

    # Wall time and database share over N requests (the debug cursor costs a little itself).
    db_time = 0.0
    backend_pid = None
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend_pid = cursor.fetchone()[0]
    backend_started = backend_cpu(backend_pid)
    cpu_started = time.process_time()
    started = time.perf_counter()
    for _ in range(args.requests):
        with CaptureQueriesContext(connection) as ctx:
            register()
        db_time += sum(float(q["time"]) for q in ctx.captured_queries)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    backend = backend_cpu(backend_pid) - backend_started
    reset_queries()
    print(
        f"\n== {args.requests} registrations in one process: {wall / args.requests * 1000:.2f} ms each "
        f"({args.requests / wall:.0f}/s on one core), of which database {db_time / args.requests * 1000:.2f} ms "
        f"as the driver sees it; CPU of this process {cpu / args.requests * 1000:.2f} ms each"
        + (f", of its PostgreSQL backend {backend / args.requests * 1000:.2f} ms each" if backend_pid else "")
    )
    print(machine.line())

    if args.no_profile:
        return 0
    # --cpu profiles CPU time only (time.process_time), so waiting on the database does not show.
    profiler = cProfile.Profile(time.process_time) if args.cpu else cProfile.Profile()
    profiler.enable()
    for _ in range(args.requests):
        register()
    profiler.disable()
    print_by_package(pstats.Stats(profiler), args.requests)
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats = (stats if args.full_paths else stats.strip_dirs()).sort_stats(order)
        stats.print_stats(args.top)
        kind = "CPU" if args.cpu else "wall"
        print(f"\n== cProfile ({kind} time) of {args.requests} registrations, by {order}")
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:12000])
    if args.grep:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("cumulative").print_stats(args.grep)
        print(f"\n== profile rows matching {args.grep!r}")
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:12000])
        if args.callers:
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("cumulative").print_callers(args.grep)
            print(f"\n== callers of {args.grep!r}")
            print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:12000])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
