"""The web process never imports the worker's libraries.

Model runtimes, presidio and spaCy, fairlearn, shap, pyarrow, the AWS SDK and the report PDF engine
(WeasyPrint, pyHanko) belong to the
worker (``worker/``): the web process stays quick to start and small in memory, and a request
can never run them. Not even regopy: policy packs are compiled and evaluated in sandboxed child
processes (``apps.policies.sandbox``), so the web process that asks for a decision never loads it.

A fresh interpreter loads the web process as a server does (``controlplane.wsgi``, which
imports every URLconf and view), then every other web module of every app, reads a Parquet
upload's columns as an upload does, and serves a few requests; none of the worker's libraries
may be loaded by then. boto3 is imported by the web process only when artifact storage is S3
(``ASSAY_STORAGE_URL=s3://...``), on first use: uploads go to the bucket (docs/access.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.registry import artifacts

ROOT = Path(__file__).resolve().parents[2]

WORKER_LIBRARIES = (
    "shap",
    "presidio_analyzer",
    "presidio_anonymizer",
    "spacy",
    "fairlearn",
    "onnxruntime",
    "onnx",
    "pyarrow",
    "boto3",
    "skops",
    "xgboost",
    "lightgbm",
    "sklearn",
    "kubernetes",
    "weasyprint",
    "pyhanko",
)

LOAD_THE_WEB_PROCESS = """
import importlib, io, json, pathlib, sys
import controlplane.wsgi as wsgi
from django.urls import URLPattern, URLResolver, get_resolver

def callbacks(patterns):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from callbacks(p.url_patterns)
        elif isinstance(p, URLPattern):
            yield p.callback

views = {f.__module__ for f in callbacks(get_resolver().url_patterns)}
modules = []
for path in sorted(pathlib.Path("apps").rglob("*.py")):
    parts = path.with_suffix("").parts
    # management commands (and the demo loader) run as commands, never in the web process
    if "migrations" in parts or "management" in parts or parts[1] == "demo":
        continue
    modules.append(".".join(parts).removesuffix(".__init__"))
for name in modules:
    importlib.import_module(name)

# a Parquet upload's columns are checked in the web process too, from the footer
from apps.registry import sniffing
data = pathlib.Path(sys.argv[1]).read_bytes()
shape = sniffing.detect_dataset(io.BytesIO(data), len(data), None)

statuses = []
for path in ("/api/v1/health/", "/login/", "/api/v1/schema/"):
    environ = {
        "REQUEST_METHOD": "GET", "PATH_INFO": path, "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000",
        "HTTP_HOST": "127.0.0.1", "wsgi.input": io.BytesIO(b""), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
    }
    b"".join(wsgi.application(environ, lambda s, headers, exc_info=None: statuses.append(s)))
print(json.dumps({"views": sorted(views), "modules": modules, "statuses": statuses, "loaded": sorted(sys.modules),
                  "parquet_columns": shape.columns}))
"""


def test_the_web_process_never_imports_the_worker_libraries(tmp_path):
    # given a fresh process with a deployment's environment
    env = {**os.environ, "DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "imports-test-" + "x" * 40}
    env.update({"DJANGO_ALLOWED_HOSTS": "127.0.0.1", "ASSAY_VAR_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)})
    env.pop("DJANGO_SETTINGS_MODULE", None)

    parquet = tmp_path / "upload.parquet"
    parquet.write_bytes(artifacts.parquet_bytes())

    # when it loads every URLconf, view and web module, sniffs a Parquet upload, and serves requests
    done = subprocess.run(
        [sys.executable, "-c", LOAD_THE_WEB_PROCESS, str(parquet)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )

    # then it loaded the views of every app it serves
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    apps_served = {name.split(".")[1] for name in result["views"] if name.startswith("apps.")}
    assert apps_served >= {"accounts", "registry", "evidence", "policies", "releases", "notifications", "audit"}
    assert len(result["modules"]) > 50 and all(s.split()[0] in ("200", "302", "503") for s in result["statuses"])
    assert result["parquet_columns"] == artifacts.COLUMNS
    # and none of the worker's libraries
    loaded = {name.split(".")[0] for name in result["loaded"]}
    assert sorted(loaded & set(WORKER_LIBRARIES)) == []
    # nor the worker's own code, nor regopy (packs run in the policy sandbox's child processes)
    assert sorted(name for name in result["loaded"] if name == "worker" or name.startswith("worker.")) == []
    assert "regopy" not in loaded
