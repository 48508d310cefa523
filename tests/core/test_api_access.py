"""Under /api/v1/ only health, schema and docs are public: every other path answers 401 without credentials."""

from __future__ import annotations

import re
import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

PUBLIC = {"/api/v1/health/", "/api/v1/schema/", "/api/v1/docs/"}
_SAMPLES = {"int": "1", "str": "x", "slug": "x", "uuid": "00000000-0000-0000-0000-000000000001", "path": "x"}


def _example_path(prefix: str, pattern) -> str | None:
    """A concrete path matching a URL pattern (converters filled with sample values); None for catch-alls."""
    text = str(pattern.pattern)
    if text.startswith("^"):  # a regex pattern: only the simple ones are endpoints
        text = re.sub(r"\(\?P<\w+>[^)]*\)", "1", text.strip("^$"))
        if re.search(r"[\\()\[\]*+?|$^]", text) or not text:
            return None
        return prefix + text
    return prefix + re.sub(r"<(?:(\w+):)?\w+>", lambda m: _SAMPLES.get(m.group(1) or "str", "x"), text)


def api_paths() -> list[str]:
    """Every concrete endpoint path the URLconf serves under /api/v1/."""
    found: list[str] = []

    def walk(patterns, prefix: str) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                sub = _example_path(prefix, p)
                if sub is not None:
                    walk(p.url_patterns, sub)
            elif isinstance(p, URLPattern):
                concrete = _example_path(prefix, p)
                if concrete is not None and concrete.startswith("/api/v1/"):
                    found.append(concrete)

    walk(get_resolver().url_patterns, "/")
    return sorted(set(found))


def test_the_api_has_endpoints_besides_the_public_ones():
    paths = set(api_paths())
    assert paths >= PUBLIC
    assert paths - PUBLIC  # so the 401 check below is not vacuous


@pytest.mark.parametrize("method", ["get", "post", "patch", "delete"])
def test_every_endpoint_but_the_public_ones_needs_credentials(anon_client, method):
    # given every endpoint under /api/v1/, and one that does not exist
    paths = [p for p in api_paths() if p not in PUBLIC] + ["/api/v1/no-such-endpoint/"]

    for path in paths:
        # when called without credentials
        response = getattr(anon_client, method)(path)

        # then it is refused with a problem document asking for a bearer token
        assert response.status_code == 401, f"{method.upper()} {path}: {response.status_code}"
        assert response["Content-Type"] == "application/problem+json", path
        assert response["WWW-Authenticate"] == 'Bearer realm="assay"', path
        assert response.json()["code"] == "not_authenticated", path


@pytest.mark.parametrize("path", sorted(PUBLIC))
def test_health_schema_and_docs_are_public(anon_client, path):
    response = anon_client.get(path)

    assert response.status_code in (200, 503), response.content  # health may be 503, never 401
    assert response.status_code != 401


def test_unauthenticated_attempts_are_audited_without_flooding_the_trail(audit_mark):
    # given a client at an address not seen before (the throttling counters live in the shared cache)
    address = f"2001:db8::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"
    client = APIClient(REMOTE_ADDR=address)
    mark = audit_mark()

    # when it knocks five times without credentials
    for _ in range(5):
        assert client.get("/api/v1/no-such-endpoint/").status_code == 401

    # then the trail holds one event for it
    events = mark.new(client_ip=address)
    assert [(e.action, e.outcome, e.actor_type) for e in events] == [("auth.rejected", "denied", "anonymous")]
