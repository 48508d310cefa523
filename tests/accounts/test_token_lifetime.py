"""A token lives at most ASSAY_TOKEN_MAX_DAYS, and a token created through a token never outlives
it: a leaked one-day token cannot mint a ten-year one. Every way in (API, tokens page, operator
command) refuses with a clear message naming the limit, and creates nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts import services as accounts
from apps.accounts.models import ApiToken

pytestmark = pytest.mark.django_db

LIST = "/api/v1/tokens/"


def token_client(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def alice(make_user):
    return make_user("contributor", username="alice")


def test_a_one_day_token_cannot_create_a_ten_year_token(alice, system):
    _, raw = accounts.token_create(actor=system, name="short", user=alice, scopes=["read"], expires_in_days=1)
    before = ApiToken.objects.count()

    response = token_client(raw).post(LIST, {"name": "forever", "scopes": ["read"], "expires_in_days": 3650})

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert "ASSAY_TOKEN_MAX_DAYS" in body["detail"] and "365" in body["detail"]
    assert ApiToken.objects.count() == before


def test_a_token_cannot_create_one_that_outlives_it(alice, system):
    parent, raw = accounts.token_create(actor=system, name="ci", user=alice, scopes=["read"], expires_in_days=30)

    refused = token_client(raw).post(LIST, {"name": "longer", "scopes": ["read"], "expires_in_days": 31})
    shorter = token_client(raw).post(LIST, {"name": "shorter", "scopes": ["read"], "expires_in_days": 29})
    as_long = token_client(raw).post(LIST, {"name": "as-long", "scopes": ["read"], "expires_in_days": 30})

    assert refused.status_code == 400
    assert "cannot outlive the token that creates it" in refused.json()["detail"]
    assert "at most 30 days" in refused.json()["detail"]
    assert refused.json()["errors"] == {"expires_in_days": [refused.json()["detail"].split(": ", 1)[1]]}
    assert shorter.status_code == 201, shorter.content
    assert ApiToken.objects.get(name="shorter").expires_at < parent.expires_at
    assert as_long.status_code == 201, as_long.content
    assert ApiToken.objects.get(name="as-long").expires_at == parent.expires_at  # ends with it, not a second later


def test_a_token_that_never_expires_can_create_tokens_up_to_the_maximum(alice, system):
    _, raw = accounts.token_create(actor=system, name="ci", user=alice, scopes=["read"], expires_in_days=30)
    ApiToken.objects.filter(name="ci").update(expires_at=None)  # made before the maximum existed

    response = token_client(raw).post(LIST, {"name": "year", "scopes": ["read"], "expires_in_days": 365})

    assert response.status_code == 201
    assert response.json()["expires_at"]


def test_a_session_may_create_up_to_the_maximum_and_not_beyond(client, alice):
    client.force_login(alice)

    over = client.post(LIST, {"name": "t", "scopes": ["read"], "expires_in_days": 366}, content_type="application/json")
    at = client.post(LIST, {"name": "t", "scopes": ["read"], "expires_in_days": 365}, content_type="application/json")

    assert over.status_code == 400
    assert over.json()["detail"] == "expires_in_days: A token lasts at most 365 days (ASSAY_TOKEN_MAX_DAYS)."
    assert at.status_code == 201
    expires = ApiToken.objects.get(name="t").expires_at
    assert timedelta(days=364) < expires - timezone.now() <= timedelta(days=365)


@override_settings(ASSAY_TOKEN_MAX_DAYS=30)
def test_the_maximum_is_a_setting(client, alice):
    client.force_login(alice)

    response = client.post(LIST, {"name": "t", "expires_in_days": 31}, content_type="application/json")

    assert response.status_code == 400
    assert "at most 30 days (ASSAY_TOKEN_MAX_DAYS)" in response.json()["detail"]


def test_the_tokens_page_refuses_a_lifetime_over_the_maximum(client, alice):
    client.force_login(alice)

    response = client.post("/tokens/", {"name": "long", "scopes": ["read"], "expires_in_days": "3650"})

    assert response.status_code == 200
    assert b"A token lasts at most 365 days (ASSAY_TOKEN_MAX_DAYS)." in response.content
    assert not ApiToken.objects.filter(name="long").exists()
    assert b"Between 1 and 365 days." in client.get("/tokens/").content


def test_token_create_command_refuses_a_lifetime_over_the_maximum(alice):
    with pytest.raises(CommandError, match=r"at most 365 days \(ASSAY_TOKEN_MAX_DAYS\)"):
        call_command("token_create", "--user", "alice", "--expires-in-days", "3650")
    assert not ApiToken.objects.filter(user=alice).exists()


def test_a_token_without_expiry_is_refused_while_a_maximum_is_set(alice, system):
    from apps.core.errors import ValidationFailed

    with pytest.raises(ValidationFailed, match="A token must expire"):
        accounts.token_create(actor=system, name="never", user=alice, expires_in_days=None)
    with override_settings(ASSAY_TOKEN_MAX_DAYS=0):
        token, _ = accounts.token_create(actor=system, name="never", user=alice, expires_in_days=None)
    assert token.expires_at is None
