"""``manage.py check --deploy`` with a production environment reports nothing: HTTPS redirect and
HSTS come from settings (or the proxy, with their checks silenced by the operator), and the one
check silenced in the settings (CSRF middleware by name) is silenced for a reason that holds."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client, override_settings

ROOT = Path(__file__).resolve().parents[2]


def production_env(tmp_path, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "LANG": "C.UTF-8",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "assay.example.com",
        "DJANGO_SECURE_PROXY_SSL_HEADER": "1",
        "ASSAY_SSL_REDIRECT": "1",
        "ASSAY_HSTS_SECONDS": "31536000",
        "ASSAY_HSTS_INCLUDE_SUBDOMAINS": "1",
        "ASSAY_HSTS_PRELOAD": "1",
        "ASSAY_VAR_DIR": str(tmp_path / "var"),  # no local.env there
        **extra,
    }


def check_deploy(tmp_path, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(tmp_path, **extra),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_check_deploy_reports_nothing_for_a_production_environment(tmp_path):
    done = check_deploy(tmp_path)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


@pytest.mark.slow
def test_when_the_proxy_redirects_and_sends_hsts_the_operator_silences_those_checks(tmp_path):
    bare = check_deploy(tmp_path, ASSAY_SSL_REDIRECT="0", ASSAY_HSTS_SECONDS="0")
    silenced = check_deploy(
        tmp_path,
        ASSAY_SSL_REDIRECT="0",
        ASSAY_HSTS_SECONDS="0",
        DJANGO_SILENCED_SYSTEM_CHECKS="security.W004,security.W008",
    )

    assert bare.returncode != 0 and "security.W004" in bare.stderr + bare.stdout
    assert silenced.returncode == 0, silenced.stdout + silenced.stderr


def test_csrf_protection_runs_wrapped_which_is_why_its_check_is_silenced():
    from apps.core.middleware import BrowserCsrfMiddleware

    assert "security.W003" in settings.SILENCED_SYSTEM_CHECKS
    assert "apps.core.middleware.BrowserCsrfMiddleware" in settings.MIDDLEWARE
    assert BrowserCsrfMiddleware.wrapped == "django.middleware.csrf.CsrfViewMiddleware"


@pytest.mark.django_db
def test_the_dashboard_refuses_a_form_post_without_its_csrf_token(make_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user())

    response = client.post("/tokens/", {"name": "forged", "scopes": ["read"], "expires_in_days": "30"})

    assert response.status_code == 403


@pytest.mark.django_db
@override_settings(
    SECURE_SSL_REDIRECT=True, SECURE_HSTS_SECONDS=3600, SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https")
)
def test_plain_http_is_redirected_and_https_answers_carry_hsts(client):
    plain = client.get("/login/")
    behind_proxy = client.get("/login/", HTTP_X_FORWARDED_PROTO="https")
    health = client.get("/api/v1/health/")

    assert plain.status_code == 301 and plain["Location"].startswith("https://")
    assert behind_proxy.status_code == 200
    assert behind_proxy["Strict-Transport-Security"] == "max-age=3600"
    assert health.status_code in (200, 503)  # load balancers may check over plain HTTP
