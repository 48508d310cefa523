"""The production web server, Granian, serving the control plane over real HTTP as deployed.

The rest of the suite talks to the app through Django's test client; here the real server runs
``controlplane.wsgi`` in a process of its own (``granian --interface wsgi``, the production
command of docs/operations.md), on the suite's own database (a file on SQLite, ``test_<name>`` on
PostgreSQL) and broker, and a client speaks HTTP/1.1 to it over one kept-alive connection: what
the server puts in the WSGI environ (client address, request body stream, headers) and how it
sends a streamed response are what the audit trail, uploads and exports rely on.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.utils import timezone

from apps.accounts import services as accounts
from apps.audit.chain import seal_pending
from apps.audit.models import AuditEvent
from apps.jobs import services as jobs
from apps.registry.models import ModelVersion
from tests.registry import artifacts
from tests.registry.fixtures import stored_files
from tests.support.db import database_url
from tests.support.server import start_granian

ROOT = Path(__file__).resolve().parents[2]
MAX_UPLOAD = 200_000

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(transactional_db, settings, tmp_path):
    """Granian on a free loopback port, with 2 workers of 2 threads; yields its port."""
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "ASSAY_VAR_DIR": str(settings.VAR_DIR),  # the same filesystem:// broker folder, if that is the broker
        "ASSAY_STORAGE_URL": settings.ASSAY_STORAGE_URL,  # where the test looks for stored bytes
        "ASSAY_MAX_UPLOAD_BYTES": str(MAX_UPLOAD),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)  # controlplane.wsgi sets it, as under a real deployment
    log = tmp_path / "granian.log"
    proc = start_granian(port, env, log)
    try:
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        sys.stderr.write(log.read_text()[-5000:])  # shown if the test failed


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[str, bytes]:
    """A multipart/form-data body, as ``curl -F`` sends one."""
    boundary = "assay" + secrets.token_hex(12)
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, data) in files.items():
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", b"".join(parts)


def call(conn: http.client.HTTPConnection, method: str, path: str, *, token: str = "", body=b"", headers=None):
    """One request on the kept-alive connection; returns (status, headers, body bytes)."""
    sent = dict(headers or {})
    if token:
        sent["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=body, headers=sent)
    response = conn.getresponse()
    return response.status, response, response.read()


def test_granian_serves_registrations_uploads_refusals_and_streamed_exports(
    server, contributor, model, make_user, system
):
    # given a CI token for the model's contributor, an auditor's token, and one kept-alive connection
    _, ci_token = accounts.token_create(actor=system, name="ci", user=contributor, scopes=["read", "registry:write"])
    auditor = make_user("auditor", username="audrey")
    _, audit_token = accounts.token_create(actor=system, name="audit", user=auditor, scopes=["read", "audit:read"])
    conn = http.client.HTTPConnection("127.0.0.1", server, timeout=30)
    versions = f"/api/v1/models/{model.name}/versions/"

    # when an anonymous client posts, it gets a problem+json 401
    status, response, body = call(conn, "POST", versions, body=b"{}", headers={"Content-Type": "application/json"})
    assert status == 401, body
    assert response.getheader("Content-Type") == "application/problem+json"

    # when CI uploads a 6 KB-class ONNX artifact with its own request id
    artifact = artifacts.onnx_bytes()
    content_type, payload = multipart({"format": "onnx"}, {"artifact": ("model.onnx", artifact)})
    status, response, body = call(
        conn,
        "POST",
        versions,
        token=ci_token,
        body=payload,
        headers={"Content-Type": content_type, "X-Request-ID": "ci-run-4242"},
    )

    # then the version is registered with the digest and size of the bytes sent, which are stored
    assert status == 201, body
    created = json.loads(body)
    assert created["sha256"] == hashlib.sha256(artifact).hexdigest()
    assert created["size"] == len(artifact)
    assert response.getheader("X-Request-ID") == "ci-run-4242"
    version = ModelVersion.objects.get(model=model, number=created["number"])
    assert not version.artifact_is_reference
    assert version.artifact_uri in stored_files(), (version.artifact_uri, stored_files())
    # and its audit event names the request and the client's address as the server saw it
    event = AuditEvent.objects.get(action="model_version.created", target_id=str(version.pk))
    assert (event.request_id, event.client_ip, event.source) == ("ci-run-4242", "127.0.0.1", "api")
    assert event.actor_name == contributor.username

    # when an upload is over the configured limit, it is cut off with a 413 and nothing is kept
    files_before = stored_files()
    big = artifacts.random_bytes(MAX_UPLOAD * 3)
    content_type, payload = multipart({}, {"artifact": ("big.onnx", big)})
    oversized = http.client.HTTPConnection("127.0.0.1", server, timeout=30)
    status, response, body = call(
        oversized, "POST", versions, token=ci_token, body=payload, headers={"Content-Type": content_type}
    )
    oversized.close()
    assert status == 413, body
    assert f"{MAX_UPLOAD} bytes" in json.loads(body)["detail"]
    assert ModelVersion.objects.filter(model=model).count() == 1
    assert stored_files() == files_before

    # when the seal task has run (an export holds the sealed chain; it seals nothing itself)
    seal_pending(blocking=True)
    # and the auditor exports the trail as JSON Lines (a streamed response) on the same connection
    status, response, body = call(conn, "GET", "/api/v1/audit/export/?format=jsonl", token=audit_token)

    # then every line is an event, the registration among them, and the connection is still usable
    assert status == 200, body[:500]
    lines = [json.loads(line) for line in body.decode().splitlines() if line]
    assert any(e["action"] == "model_version.created" and e["request_id"] == "ci-run-4242" for e in lines)
    # and health is ok while a worker is alive (without one it is "degraded": tests/jobs/test_health_workers.py)
    jobs.worker_heartbeat(name="host:1", kind="database", beat=True, started_at=timezone.now())
    status, _, body = call(conn, "GET", "/api/v1/health/")
    assert status == 200 and json.loads(body)["status"] == "ok"
    conn.close()
