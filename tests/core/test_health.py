"""GET /api/v1/health/ and the public API documents (/api/v1/schema/, /api/v1/docs/)."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.utils import timezone

from apps.jobs import services as jobs

pytestmark = pytest.mark.django_db

PROBLEM_JSON = "application/problem+json"


@pytest.mark.broker
def test_health_is_public_and_reports_database_and_broker(anon_client, settings):
    # given a live worker (health is "degraded" without one: tests/jobs/test_health_workers.py)
    jobs.worker_heartbeat(name="host:1", kind="database", beat=True, started_at=timezone.now())

    # when a load balancer asks, without credentials
    response = anon_client.get("/api/v1/health/")

    # then the control plane is healthy on the configured database and broker
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["database"]["vendor"] == connection.vendor
    assert body["broker"]["ok"] is True
    assert body["broker"]["transport"] == settings.CELERY_BROKER_URL.split("://")[0]
    assert body["workers"]["ok"] is True
    assert body["workers"]["workers_alive"] == 1


@pytest.mark.parametrize("unreachable", ["redis://127.0.0.1:1/0", "amqp://guest:guest@127.0.0.1:1//"])
def test_health_is_503_with_a_clear_body_when_the_broker_is_unreachable(anon_client, settings, unreachable):
    # given a broker URL pointing at a closed port
    settings.CELERY_BROKER_URL = unreachable

    # when health is asked
    response = anon_client.get("/api/v1/health/")

    # then it says the service is unavailable, and why, as a problem document
    assert response.status_code == 503
    assert response["Content-Type"] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == 503
    assert body["title"] == "Service unavailable"
    assert body["detail"] == "Unreachable: broker."
    assert body["database"]["ok"] is True
    assert body["broker"]["ok"] is False
    assert body["broker"]["transport"] == unreachable.split("://")[0]
    assert body["broker"]["error"]
    # credentials in the URL are never echoed
    assert "guest" not in response.content.decode()


def test_health_only_answers_get(anon_client):
    response = anon_client.post("/api/v1/health/", {}, format="json")

    assert response.status_code == 405
    assert response["Content-Type"] == PROBLEM_JSON
    assert response.json()["code"] == "method_not_allowed"
    assert "GET" in response["Allow"]


def test_the_openapi_schema_is_public(anon_client):
    response = anon_client.get("/api/v1/schema/", {"format": "json"})

    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/health/" in schema["paths"]


def test_the_docs_page_is_public_and_loads_nothing_from_other_hosts(anon_client):
    # when a browser opens the interactive docs without credentials
    response = anon_client.get("/api/v1/docs/")

    # then the page renders
    assert response.status_code == 200
    page = response.content.decode()
    assets = re.findall(r'<(?:script|link)\b[^>]*\b(?:src|href)="([^"]+)"', page)
    assert any(a.endswith(".js") or "script" in a for a in assets) and any(a.endswith(".css") for a in assets)

    # and every script and stylesheet it names is served by the control plane itself
    for asset in assets:
        parts = urlsplit(asset)
        assert not parts.scheme and not parts.netloc, f"{asset} is loaded from another host"
        fetched = anon_client.get(asset)
        assert fetched.status_code == 200, asset
        content = b"".join(fetched.streaming_content) if fetched.streaming else fetched.content
        assert content, asset
