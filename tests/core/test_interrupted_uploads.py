"""Uploads cut off by a killed web server leave nothing behind once the cleanup has run.

The real server (Granian, as deployed) takes uploads while it is killed with SIGKILL, as a crash or
the kernel's OOM killer would: one upload halfway through its body (its spooled copy is left in
``FILE_UPLOAD_TEMP_DIR``) and one while its bytes are being copied into artifact storage (a
``.partial`` file is left beside its final name). ``manage.py cleanup_uploads``, as ``scripts/run``
runs it at start, removes both at once (their writer is gone) and leaves complete artifacts alone.
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
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.core.management import call_command

from apps.accounts import services as accounts
from apps.registry.models import ModelVersion
from tests.core.test_server import call, free_port, multipart
from tests.support.db import database_url
from tests.support.server import start_granian

ROOT = Path(__file__).resolve().parents[2]
BIG = 160 * 1024 * 1024  # as large as the uploads that were seen left behind

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]


def lightgbm_bytes(size: int, fill: bytes = b"x") -> bytes:
    """A body the registry's cheap check takes for a LightGBM text model (nothing loads it here)."""
    head = b"tree\nversion=v4\nnum_class=1\n"
    return head + fill * (size - len(head))


def wait_for(what: str, predicate, *, timeout: float, interval: float = 0.001):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def test_a_killed_server_leaves_no_spooled_upload_or_partial_artifact_after_the_cleanup(
    transactional_db, settings, tmp_path, contributor, model, system
):
    # given the real server, spooling uploads into a folder of the project's, and a token for CI
    spool = tmp_path / "spool"
    spool.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(spool)
    storage = Path(urlparse(settings.ASSAY_STORAGE_URL).path)
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "ASSAY_VAR_DIR": str(settings.VAR_DIR),
        "ASSAY_STORAGE_URL": settings.ASSAY_STORAGE_URL,
        "ASSAY_UPLOAD_TEMP_DIR": str(spool),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    server = start_granian(port, env, tmp_path / "granian.log")
    _, token = accounts.token_create(actor=system, name="ci", user=contributor, scopes=["read", "registry:write"])
    versions = f"/api/v1/models/{model.name}/versions/"
    try:
        # and one artifact uploaded completely
        complete = lightgbm_bytes(2 * 1024 * 1024, fill=b"c")
        content_type, payload = multipart({"format": "lightgbm"}, {"artifact": ("done.txt", complete)})
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        status, _, body = call(
            conn, "POST", versions, token=token, body=payload, headers={"Content-Type": content_type}
        )
        conn.close()
        assert status == 201, body
        key = ModelVersion.objects.get(model=model).artifact_uri
        kept = (storage / key).read_bytes()
        assert hashlib.sha256(kept).hexdigest() == json.loads(body)["sha256"]

        # when one upload has sent half of its body ...
        content_type, half = multipart({"format": "lightgbm"}, {"artifact": ("half.txt", lightgbm_bytes(BIG))})
        stalled = socket.create_connection(("127.0.0.1", port))
        stalled.sendall(
            f"POST {versions} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(half)}\r\n\r\n".encode()
        )
        stalled.sendall(half[: len(half) // 2])
        wait_for("the half upload to spool", lambda: any(spool.iterdir()), timeout=30, interval=0.05)

        # ... and another is being copied into storage, the server is killed
        content_type, full = multipart({"format": "lightgbm"}, {"artifact": ("full.txt", lightgbm_bytes(BIG, b"f"))})

        def send_full() -> None:
            with contextlib.suppress(OSError, http.client.HTTPException):
                uploader = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                call(uploader, "POST", versions, token=token, body=full, headers={"Content-Type": content_type})

        sender = threading.Thread(target=send_full, daemon=True)
        sender.start()
        wait_for("an artifact being copied into storage", lambda: list(storage.rglob(".*.partial")), timeout=60)
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
        sender.join(timeout=30)
        stalled.close()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
        sys.stderr.write((tmp_path / "granian.log").read_text()[-3000:])

    # then the killed uploads left a spooled copy and a half-written artifact behind
    assert len([p for p in spool.iterdir() if p.name.endswith(".upload")]) >= 1
    partials = list(storage.rglob(".*.partial"))
    assert partials
    # (the server's worker processes are all gone: their leftovers count as abandoned at once)
    time.sleep(0.5)

    # when the cleanup runs, as scripts/run does at start (with the default grace of an hour)
    call_command("cleanup_uploads")

    # then nothing is left in the spool folder or under a temporary name, and the complete artifact is as it was
    assert list(spool.iterdir()) == []
    assert list(storage.rglob(".*.partial")) == []
    assert (storage / key).read_bytes() == kept
    assert [str(p.relative_to(storage)) for p in storage.rglob("*") if p.is_file()] == [key]
    assert ModelVersion.objects.filter(model=model).count() == 1
