"""The dashboard's token page: list your tokens, create one (shown once), revoke one."""

from __future__ import annotations

import re

import pytest
from rest_framework.test import APIClient

from apps.accounts import services as accounts
from apps.accounts.models import ApiToken

TOKEN_RE = re.compile(rb"assay_[a-z0-9]{12}_[A-Za-z0-9_-]{43}")


@pytest.fixture
def signed_in(client, make_user):
    user = make_user("contributor", username="alice")
    client.force_login(user)
    client.user = user
    return client


@pytest.mark.django_db
def test_the_page_lists_only_my_tokens(signed_in, make_user, system):
    # given: one token of mine, one of someone else
    accounts.token_create(actor=system, name="my-ci", user=signed_in.user, scopes=["read", "registry:write"])
    accounts.token_create(actor=system, name="bobs-ci", user=make_user(username="bob"), scopes=["read"])
    # when
    response = signed_in.get("/tokens/")
    # then
    assert response.status_code == 200
    assert b"my-ci" in response.content and b"registry:write" in response.content
    assert b"bobs-ci" not in response.content
    assert TOKEN_RE.search(response.content) is None  # never a secret in a list
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_creating_a_token_shows_it_once(signed_in, audit_mark):
    mark = audit_mark()
    # when
    response = signed_in.post(
        "/tokens/", {"name": "github-actions", "scopes": ["read", "registry:write"], "expires_in_days": "30"}
    )
    # then: the page shows the token, which works against the API
    assert response.status_code == 200
    found = TOKEN_RE.search(response.content)
    assert found, response.content.decode()[:2000]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {found.group().decode()}")
    assert api.get("/api/v1/tokens/").status_code == 200
    # and the next visit does not show it again
    assert TOKEN_RE.search(signed_in.get("/tokens/").content) is None
    # and it was recorded, with the scopes asked for
    row = ApiToken.objects.get(user=signed_in.user, name="github-actions")
    assert row.scopes == ["read", "registry:write"]
    assert mark.actions(action="api_token.created") == ["api_token.created"]


@pytest.mark.django_db
def test_an_invalid_form_shows_errors_and_creates_nothing(signed_in):
    response = signed_in.post("/tokens/", {"name": "", "expires_in_days": "0"})
    assert response.status_code == 200
    assert b"This field is required." in response.content
    assert b"Choose at least one scope." in response.content
    assert not ApiToken.objects.exists()


@pytest.mark.django_db
def test_revoking_my_token(signed_in, system, audit_mark):
    row, _ = accounts.token_create(actor=system, name="old", user=signed_in.user, scopes=["read"])
    mark = audit_mark()
    response = signed_in.post(f"/tokens/{row.token_id}/revoke/", follow=True)
    assert response.status_code == 200
    assert b"is revoked" in response.content
    row.refresh_from_db()
    assert row.revoked_at is not None
    assert mark.actions() == ["api_token.revoked"]


@pytest.mark.django_db
def test_revoking_someone_elses_token_is_a_404(signed_in, make_user, system):
    row, _ = accounts.token_create(actor=system, name="bobs", user=make_user(username="bob"), scopes=["read"])
    assert signed_in.post(f"/tokens/{row.token_id}/revoke/").status_code == 404
    row.refresh_from_db()
    assert row.revoked_at is None


@pytest.mark.django_db
def test_revoke_is_post_only(signed_in, system):
    row, _ = accounts.token_create(actor=system, name="mine", user=signed_in.user, scopes=["read"])
    assert signed_in.get(f"/tokens/{row.token_id}/revoke/").status_code == 405
