"""API tokens: random, stored only as a hash, recognisable, scoped, expiring, revocable, and used."""

from __future__ import annotations

import hashlib
import math
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts import services as accounts
from apps.accounts import tokens
from apps.accounts.models import ApiToken
from apps.accounts.principals import principal_for_user

TOKEN_RE = re.compile(r"^assay_(?P<id>[a-z0-9]{12})_(?P<secret>[A-Za-z0-9_-]+)$")


def test_token_secrets_carry_at_least_128_random_bits():
    # when: many tokens are generated
    generated = [tokens.new_token() for _ in range(200)]
    # then: every secret decodes to at least 16 bytes of randomness, and none repeats
    for _, secret, _ in generated:
        assert len(secret) * 6 >= 128
        assert len(secret) >= math.ceil(128 / 6)
    assert len({secret for _, secret, _ in generated}) == len(generated)
    assert len({token_id for token_id, _, _ in generated}) == len(generated)


@pytest.mark.django_db
def test_only_a_hash_of_the_secret_is_stored(system, make_user):
    # given
    user = make_user()
    # when
    row, raw = accounts.token_create(actor=system, name="ci", user=user, scopes=["read"])
    # then: the token has a recognisable prefix naming its row
    match = TOKEN_RE.match(raw)
    assert match, raw
    assert row.prefix == f"assay_{match['id']}"
    assert raw.startswith(row.prefix + "_")
    # and the database holds the SHA-256 of the secret, never the secret or the token
    row.refresh_from_db()
    assert row.secret_hash == hashlib.sha256(match["secret"].encode()).hexdigest()
    stored = {f.attname: str(getattr(row, f.attname)) for f in ApiToken._meta.concrete_fields}
    assert not any(match["secret"] in value for value in stored.values())


@pytest.mark.django_db
def test_the_token_is_never_written_to_the_audit_trail(system, make_user, audit_mark):
    mark = audit_mark()
    _, raw = accounts.token_create(actor=system, name="ci", user=make_user(), scopes=["read"])
    events = mark.new(action="api_token.created")
    assert len(events) == 1
    secret = TOKEN_RE.match(raw)["secret"]
    assert secret not in str(events[0].after) and secret not in events[0].reason


@pytest.mark.django_db
def test_a_token_authenticates_and_records_when_it_was_last_used(api_client_for, make_user):
    # given: a token that was never used
    user = make_user()
    client = api_client_for(user, scopes=["read"])
    row = ApiToken.objects.get(user=user)
    assert row.last_used_at is None
    # when
    response = client.get("/api/v1/tokens/")
    # then
    assert response.status_code == 200
    row.refresh_from_db()
    assert row.last_used_at is not None
    assert row.last_used_at <= timezone.now()
    assert row.last_used_ip == "127.0.0.1"


@pytest.mark.django_db
def test_an_expired_token_is_refused_with_401_problem_json(api_client_for, make_user):
    # given: a token whose expiry has passed
    user = make_user()
    client = api_client_for(user, scopes=["read"])
    ApiToken.objects.filter(user=user).update(expires_at=timezone.now() - timedelta(seconds=1))
    # when
    response = client.get("/api/v1/tokens/")
    # then
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"] == "Token has expired."
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db
def test_a_revoked_token_is_refused_with_401_problem_json(api_client_for, make_user):
    # given: a token that worked, then was revoked
    user = make_user()
    client = api_client_for(user, scopes=["read"])
    assert client.get("/api/v1/tokens/").status_code == 200
    accounts.token_revoke(actor=principal_for_user(user), token_id=ApiToken.objects.get(user=user).token_id)
    # when
    response = client.get("/api/v1/tokens/")
    # then
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"] == "Token has been revoked."


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header",
    [
        "Bearer assay_aaaaaaaaaaaa_not-the-secret",
        "Bearer something-else",
        "Bearer",
    ],
)
def test_a_wrong_or_malformed_token_is_refused(anon_client, header):
    anon_client.credentials(HTTP_AUTHORIZATION=header)
    response = anon_client.get("/api/v1/tokens/")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"


@pytest.mark.django_db
def test_a_token_with_the_right_id_but_a_wrong_secret_is_refused(api_client_for, make_user, anon_client):
    client = api_client_for(make_user(), scopes=["read"])
    token_id = TOKEN_RE.match(client.token)["id"]
    anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer assay_{token_id}_{'x' * 43}")
    assert anon_client.get("/api/v1/tokens/").status_code == 401


@pytest.mark.django_db
def test_a_token_of_a_disabled_user_is_refused(api_client_for, make_user):
    user = make_user()
    client = api_client_for(user, scopes=["read"])
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert client.get("/api/v1/tokens/").status_code == 401


@pytest.mark.django_db
def test_tokens_expire_after_the_days_asked_and_unknown_scopes_are_refused(system, make_user):
    from apps.core.errors import ValidationFailed

    user = make_user()
    row, _ = accounts.token_create(actor=system, name="ci", user=user, scopes=["read"], expires_in_days=7)
    assert timedelta(days=6, hours=23) < row.expires_at - timezone.now() <= timedelta(days=7)
    with pytest.raises(ValidationFailed, match="Unknown scope"):
        accounts.token_create(actor=system, name="ci", user=user, scopes=["root"])


@pytest.mark.django_db
def test_token_status_reads_active_expired_revoked(system, make_user):
    row, _ = accounts.token_create(actor=system, name="ci", user=make_user(), scopes=["read"])
    assert row.status == "active"
    row.expires_at = timezone.now() - timedelta(minutes=1)
    assert row.status == "expired"
    row.revoked_at = timezone.now()
    assert row.status == "revoked"
