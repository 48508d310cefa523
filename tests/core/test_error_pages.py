"""Error answers never show settings, headers or the process environment (not even with
DJANGO_DEBUG=1), every /api/ error is problem+json, and a database locked by other writers is a
503 with Retry-After rather than a 500."""

from __future__ import annotations

import os
import sqlite3

import pytest
from django.db import connection
from django.test import Client, override_settings
from django.urls import path
from rest_framework.views import APIView

from controlplane import urls as root_urls

PROBLEM_JSON = "application/problem+json"
MARKER = "s3cr3t-marker-0b1c2d"


class ExplodingApi(APIView):
    permission_classes: list = []

    def get(self, request):
        secret = MARKER  # a local variable: the page must not show it  # noqa: F841
        raise RuntimeError("the engine failed")


def exploding_page(request):
    secret = MARKER  # noqa: F841
    raise RuntimeError("the page failed")


urlpatterns = [
    path("api/v1/_probe/explode/", ExplodingApi.as_view()),
    path("_probe/explode/", exploding_page),
    *root_urls.urlpatterns,
]
handler404 = root_urls.handler404
handler500 = root_urls.handler500

pytestmark = [pytest.mark.urls(__name__)]


@pytest.fixture
def leaky_environment(monkeypatch, settings):
    """A secret in the process environment and in a setting, as a real deployment has."""
    monkeypatch.setenv("ASSAY_PROBE_PASSWORD", MARKER)
    settings.ASSAY_PROBE_SETTING = MARKER
    return {"ASSAY_PROBE_PASSWORD": MARKER, "HTTP_X_PROBE": MARKER}  # Granian copies the environment into META


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "accept"),
    [
        ("/api/v1/_probe/explode/", "*/*"),
        ("/api/v1/_probe/explode/", "application/json"),
        ("/_probe/explode/", "text/html"),
        ("/_probe/explode/", "text/plain"),
    ],
)
def test_the_debug_error_page_shows_no_settings_environment_or_variables(leaky_environment, url, accept):
    with override_settings(DEBUG=True):
        response = Client(raise_request_exception=False).get(url, HTTP_ACCEPT=accept, **leaky_environment)

    assert response.status_code == 500
    text = response.content.decode()
    assert "RuntimeError" in text and "failed" in text  # the developer still sees what broke, and where
    assert MARKER not in text
    assert "SECRET_KEY" not in text and "DATABASES" not in text and "PATH" not in text
    assert os.environ["ASSAY_PROBE_PASSWORD"] == MARKER


@pytest.mark.django_db
def test_an_api_500_is_a_problem_without_details(leaky_environment):
    response = Client(raise_request_exception=False).get("/api/v1/_probe/explode/", **leaky_environment)

    assert response.status_code == 500
    assert response["Content-Type"] == PROBLEM_JSON
    body = response.json()
    assert body["code"] == "server_error"
    assert "engine" not in body["detail"] and MARKER not in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/v1/no/such/route/", "/api/v1/line%0Abreak/", "/api/v1/%E2%98%83"])
def test_an_unknown_api_route_is_a_problem_404(make_user, api_client_for, url):
    response = api_client_for(make_user()).get(url)

    assert response.status_code == 404
    assert response["Content-Type"] == PROBLEM_JSON
    assert response.json()["code"] == "not_found"


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "url"), [("delete", "/api/v1/health/"), ("put", "/api/v1/tokens/")])
def test_a_wrong_method_on_a_real_route_is_a_problem_405(make_user, api_client_for, method, url):
    response = getattr(api_client_for(make_user()), method)(url)

    assert response.status_code == 405
    assert response["Content-Type"] == PROBLEM_JSON
    assert response.json()["code"] == "method_not_allowed"
    assert response["Allow"]


sqlite_only = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's single write lock")


@sqlite_only
def test_a_write_the_lock_never_reaches_is_a_503_with_retry_after(make_user, api_client_for, transactional_db):
    api = api_client_for(make_user("admin"))
    api.get("/api/v1/teams/")  # the token's last use is written now, not under the held lock
    from apps.accounts.models import Team

    before = Team.objects.count()
    with _held():
        response = api.post("/api/v1/teams/", {"name": "blocked"}, format="json")

    assert response.status_code == 503, response.content
    assert response["Content-Type"] == PROBLEM_JSON
    assert response["Retry-After"] == "2"
    assert response.json()["code"] == "database_busy"
    assert Team.objects.count() == before  # nothing half-written


@sqlite_only
def test_a_dashboard_write_the_lock_never_reaches_is_a_503_page(client, make_user, transactional_db):
    client.force_login(make_user("admin"))
    client.get("/tokens/")
    with _held():
        response = client.post("/tokens/", {"name": "blocked", "scopes": ["read"], "expires_in_days": "30"})

    assert response.status_code == 503
    assert response["Retry-After"] == "2"
    assert b"busy" in response.content


class _held:
    """Another process holds SQLite's write lock; this one waits only 0.1 s for it (not the configured 30 s)."""

    def __enter__(self):
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA busy_timeout = 100")
        self.other = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None, timeout=5)
        self.other.execute("BEGIN IMMEDIATE")

    def __exit__(self, *exc):
        self.other.execute("ROLLBACK")
        self.other.close()
        connection.close()
