"""X-Request-ID: on every response, kept when the client sends a sane one, replaced when not.

That it travels on into Celery tasks and the events a worker writes is tested across real
processes in tests/worker/test_processes.py.
"""

from __future__ import annotations

import re
import uuid

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

MINTED = re.compile(r"^[0-9a-f]{32}$")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/health/",  # public API
        "/api/v1/models/",  # 401 problem
        "/api/v1/no-such-endpoint/",  # API catch-all
        "/login/",  # dashboard page
        "/no-such-page/",  # dashboard 404
        "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css",  # static file
    ],
)
def test_every_response_has_a_request_id(anon_client, path):
    response = anon_client.get(path)

    assert MINTED.match(response["X-Request-ID"]), (path, response.status_code)


def test_two_requests_get_different_ids(anon_client):
    first = anon_client.get("/api/v1/health/")["X-Request-ID"]
    second = anon_client.get("/api/v1/health/")["X-Request-ID"]

    assert first != second


@pytest.mark.parametrize("sent", ["build-4711", "gh-run.123:attempt_2", "a" * 128])
def test_a_sane_client_request_id_is_echoed(anon_client, sent):
    response = anon_client.get("/api/v1/health/", HTTP_X_REQUEST_ID=sent)

    assert response["X-Request-ID"] == sent


@pytest.mark.parametrize("sent", ["has spaces", "<script>alert(1)</script>", "a" * 129, "ünïcode", "semi;colon"])
def test_a_garbage_request_id_is_replaced(anon_client, sent):
    response = anon_client.get("/api/v1/health/", HTTP_X_REQUEST_ID=sent)

    assert MINTED.match(response["X-Request-ID"])


def test_the_request_id_is_in_the_problem_body_and_on_the_audit_event(audit_mark):
    # given a client at a fresh address (so its first refusal is audited)
    client = APIClient(REMOTE_ADDR=f"2001:db8::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}")
    mark = audit_mark()

    # when a request without credentials is refused
    response = client.get("/api/v1/models/", HTTP_X_REQUEST_ID="trace-me-42")

    # then the problem body and the audit event name the request id the client sent
    assert response.status_code == 401
    assert response.json()["request_id"] == "trace-me-42"
    [event] = mark.new(action="auth.rejected")
    assert event.request_id == "trace-me-42"
