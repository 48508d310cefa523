"""The WSGI entry point servers run (gunicorn controlplane.wsgi), loaded as a server loads it.

The test suite's own requests go through Django's test client, which never imports this module,
so a separate Python process imports it here and serves one request through it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SERVE_ONE = """
import gc, io, json, sys
import controlplane.wsgi as wsgi

frozen = gc.get_freeze_count()
status = []
environ = {
    "REQUEST_METHOD": "GET", "PATH_INFO": "/api/v1/health/", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000",
    "HTTP_HOST": "127.0.0.1", "wsgi.input": io.BytesIO(b""), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
}
body = b"".join(wsgi.application(environ, lambda s, headers, exc_info=None: status.append(s)))
print(json.dumps({"frozen": frozen, "status": status[0], "body": json.loads(body)}))
"""


@pytest.mark.backend  # serves a health check through the configured database, from a process of its own
def test_the_wsgi_entry_point_loads_every_view_up_front_and_serves(tmp_path):
    # given a fresh process with the deployment's environment (production mode, a secret key)
    env = {**os.environ, "DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "wsgi-test-" + "x" * 40}
    env.update({"DJANGO_ALLOWED_HOSTS": "127.0.0.1", "ASSAY_VAR_DIR": str(tmp_path)})
    env.pop("DJANGO_SETTINGS_MODULE", None)  # the entry point sets it, as under gunicorn

    # when it imports controlplane.wsgi and serves a health check through it
    done = subprocess.run(
        [sys.executable, "-c", SERVE_ONE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )

    # then the request was answered by the health view (200, or 503 naming what is down; "degraded" here,
    # since this database has no worker heartbeats table, let alone a worker)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    code = int(result["status"].split()[0])
    assert (code, result["body"]["status"]) in ((200, "ok"), (200, "degraded"), (503, 503)), result
    # and everything loading built (modules, views, URL patterns) was frozen out of the collector's
    # full passes before the first request
    assert result["frozen"] > 50_000, result
