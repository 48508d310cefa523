"""API rate limits: anonymous use per client address, authenticated use per principal; a refused
request is a 429 problem with Retry-After, and the limit holds across server processes."""

from __future__ import annotations

import http.client
import uuid

import pytest
from django.test import override_settings

from tests.core.test_server import server  # noqa: F401  (the Granian fixture)

PROBLEM_JSON = "application/problem+json"


def assert_throttled(response) -> None:
    assert response.status_code == 429, response.content[:300]
    assert response["Content-Type"] == PROBLEM_JSON
    body = response.json()
    assert body["code"] == "throttled"
    assert int(response["Retry-After"]) >= 1


@pytest.mark.django_db
@override_settings(ASSAY_ANON_RATE="3/minute")
def test_anonymous_requests_are_limited_per_address(anon_client, audit_mark):
    mark = audit_mark()
    answers = [anon_client.get("/api/v1/models/").status_code for _ in range(3)]
    assert answers == [401, 401, 401]

    assert_throttled(anon_client.get("/api/v1/models/"))
    assert_throttled(anon_client.get("/api/v1/schema/"))  # public endpoints share the address's budget
    assert anon_client.get("/api/v1/models/", REMOTE_ADDR="198.51.100.7").status_code == 401  # another address
    assert len(mark.new(action="auth.rejected")) <= 2  # the flood is summarised, not one row per request


@pytest.mark.django_db
@override_settings(ASSAY_ANON_RATE="2/minute")
def test_a_forged_forwarded_for_header_does_not_reset_the_limit(anon_client, settings):
    for n in range(2):
        anon_client.get("/api/v1/models/", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")
    assert_throttled(anon_client.get("/api/v1/models/", HTTP_X_FORWARDED_FOR="203.0.113.99"))

    # behind a proxy the last entry (the one the proxy appended) counts, not what the client put first
    settings.ASSAY_TRUST_X_FORWARDED_FOR = True
    for n in range(2):
        anon_client.get("/api/v1/models/", HTTP_X_FORWARDED_FOR=f"10.9.9.{n}, 192.0.2.10")
    assert_throttled(anon_client.get("/api/v1/models/", HTTP_X_FORWARDED_FOR="10.9.9.50, 192.0.2.10"))
    assert anon_client.get("/api/v1/models/", HTTP_X_FORWARDED_FOR="10.9.9.50, 192.0.2.11").status_code == 401


@pytest.mark.django_db
@override_settings(ASSAY_USER_RATE="3/minute")
def test_authenticated_requests_are_limited_per_principal(make_user, api_client_for):
    alice, bob = make_user("viewer"), make_user("viewer")
    first, second_token_of_alice, bobs = api_client_for(alice), api_client_for(alice), api_client_for(bob)

    assert [first.get("/api/v1/models/").status_code for _ in range(3)] == [200, 200, 200]

    assert_throttled(first.get("/api/v1/models/"))
    assert_throttled(second_token_of_alice.get("/api/v1/models/"))  # the person, not the token
    assert bobs.get("/api/v1/models/").status_code == 200


@pytest.mark.django_db
@override_settings(ASSAY_USER_RATE="off", ASSAY_ANON_RATE="off")
def test_a_rate_can_be_turned_off(make_user, api_client_for, anon_client):
    api = api_client_for(make_user("viewer"))
    assert all(api.get("/api/v1/models/").status_code == 200 for _ in range(30))
    assert all(anon_client.get("/api/v1/models/").status_code == 401 for _ in range(30))


@pytest.mark.backend
def test_the_cache_holding_the_counters_is_shared_by_processes(settings):
    backend = settings.CACHES["default"]["BACKEND"]
    assert backend.rsplit(".", 1)[-1] in {"FileBasedCache", "RedisCache", "DatabaseCache"}, backend


@pytest.fixture
def low_anonymous_rate(monkeypatch, tmp_path):
    monkeypatch.setenv("ASSAY_ANON_RATE", "5/minute")
    # a cache folder of this test's own: the server's processes share it with each other, not with other tests
    monkeypatch.setenv("ASSAY_CACHE_URL", (tmp_path / "cache").as_uri())


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_anonymous_limit_holds_across_server_processes(low_anonymous_rate, server):  # noqa: F811
    # Granian runs two worker processes; each request on a new connection may land on either
    statuses = []
    for _ in range(12):
        conn = http.client.HTTPConnection("127.0.0.1", server, timeout=30)
        conn.request("GET", "/api/v1/models/", headers={"X-Forwarded-For": str(uuid.uuid4())})
        response = conn.getresponse()
        response.read()
        statuses.append((response.status, response.getheader("Retry-After")))
        conn.close()

    # the health checks of the fixture are not throttled; these twelve share one budget of five
    assert [s for s, _ in statuses].count(401) == 5, statuses
    assert [s for s, _ in statuses].count(429) == 7, statuses
    assert all(int(retry) >= 1 for s, retry in statuses if s == 429)


@pytest.mark.django_db
@override_settings(ASSAY_ANON_RATE="2/second")
def test_a_client_that_waits_its_retry_after_gets_back_in(anon_client):
    import time

    assert [anon_client.get("/api/v1/models/").status_code for _ in range(2)] == [401, 401]
    refused = anon_client.get("/api/v1/models/")
    assert_throttled(refused)

    time.sleep(int(refused["Retry-After"]))

    assert anon_client.get("/api/v1/models/").status_code == 401
