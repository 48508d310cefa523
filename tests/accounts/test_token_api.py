"""The token API: GET|POST /api/v1/tokens/ and POST /api/v1/tokens/{token_id}/revoke/."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.accounts import services as accounts
from apps.accounts.models import ApiToken
from apps.accounts.principals import principal_for_user
from tests.factories.accounts import ServiceAccountFactory

LIST = "/api/v1/tokens/"


def revoke_url(token_id: str) -> str:
    return f"/api/v1/tokens/{token_id}/revoke/"


# ---- GET /api/v1/tokens/ ------------------------------------------------------------------


@pytest.mark.django_db
def test_listing_tokens_needs_authentication(anon_client):
    response = anon_client.get(LIST)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"


@pytest.mark.django_db
def test_a_person_lists_only_their_own_tokens_without_secrets(api_client_for, make_user, system):
    # given: a person with no role at all (tokens are personal) and someone else's token
    user = make_user()
    client = api_client_for(user, scopes=["read"])
    accounts.token_create(actor=system, name="theirs", user=make_user(), scopes=["read"])
    # when
    response = client.get(LIST)
    # then
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    (token,) = body["results"]
    assert token["name"] == "test"
    assert token["prefix"].startswith("assay_")
    assert token["scopes"] == ["read"]
    assert token["status"] == "active"
    assert token["last_used_at"] is not None
    assert "token" not in token and "secret_hash" not in token


@pytest.mark.django_db
def test_the_list_works_with_a_browser_session_too(make_user):
    user = make_user()
    accounts.token_create(actor=principal_for_user(user), name="laptop", user=user, scopes=["read"])
    client = APIClient()
    client.force_login(user)
    response = client.get(LIST)
    assert response.status_code == 200
    assert [t["name"] for t in response.json()["results"]] == ["laptop"]


@pytest.mark.django_db
def test_the_list_query_count_does_not_grow_with_the_number_of_tokens(
    api_client_for, make_user, system, django_assert_max_num_queries
):
    user = make_user()
    client = api_client_for(user, scopes=["read"])
    client.get(LIST)  # the first use writes last_used_at; later reads within a minute do not
    for n in range(30):
        accounts.token_create(actor=system, name=f"t{n}", user=user, scopes=["read"])
    with django_assert_max_num_queries(4):
        response = client.get(LIST + "?page_size=100")
    assert response.json()["count"] == 31


# ---- POST /api/v1/tokens/ -----------------------------------------------------------------


@pytest.mark.django_db
def test_creating_a_token_needs_authentication(anon_client):
    assert anon_client.post(LIST, {"name": "x"}, format="json").status_code == 401


@pytest.mark.django_db
def test_a_person_creates_a_token_and_sees_it_once(api_client_for, make_user, audit_mark):
    # given
    user = make_user("contributor")
    client = api_client_for(user, scopes=["read", "registry:write"])
    mark = audit_mark()
    # when
    response = client.post(
        LIST, {"name": "github-actions", "scopes": ["read", "registry:write"], "expires_in_days": 30}, format="json"
    )
    # then: the token comes back once, and it works
    assert response.status_code == 201
    body = response.json()
    assert body["token"].startswith(body["prefix"] + "_")
    assert body["scopes"] == ["read", "registry:write"]
    assert response["Cache-Control"] == "no-store"
    fresh = APIClient()
    fresh.credentials(HTTP_AUTHORIZATION=f"Bearer {body['token']}")
    assert fresh.get(LIST).status_code == 200
    # and the list never shows it again
    listed = client.get(LIST).json()["results"]
    assert all("token" not in t for t in listed)
    # and the creation is audited, with the acting token named, without the secret
    (event,) = mark.new(action="api_token.created")
    assert event.outcome == "success"
    assert event.actor_type == "user" and event.actor_id == str(user.pk)
    assert event.token_id == ApiToken.objects.get(user=user, name="test").token_id
    assert event.target_id == body["token_id"]
    assert body["token"].split("_", 2)[2] not in str(event.after)


@pytest.mark.django_db
def test_a_new_token_defaults_to_read_only_and_90_days(api_client_for, make_user):
    client = api_client_for(make_user(), scopes=["read"])
    body = client.post(LIST, {"name": "script"}, format="json").json()
    assert body["scopes"] == ["read"]
    assert body["expires_at"] is not None


@pytest.mark.django_db
def test_a_token_cannot_mint_a_token_with_wider_scopes(api_client_for, make_user, audit_mark):
    # given: a read-only token of an admin
    user = make_user("admin")
    client = api_client_for(user, scopes=["read"])
    mark = audit_mark()
    # when: it asks for an admin-scoped token
    response = client.post(LIST, {"name": "escalate", "scopes": ["read", "admin"]}, format="json")
    # then: refused, nothing created, and the attempt is in the trail
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert "admin" in response.json()["detail"]
    assert not ApiToken.objects.filter(name="escalate").exists()
    (event,) = mark.new(action="api_token.created")
    assert event.outcome == "denied"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "payload",
    [{}, {"name": ""}, {"name": "x", "scopes": ["root"]}, {"name": "x", "expires_in_days": 0}],
)
def test_bad_token_requests_get_a_400_problem(api_client_for, make_user, payload):
    client = api_client_for(make_user())
    response = client.post(LIST, payload, format="json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"


@pytest.mark.django_db
def test_a_service_account_cannot_issue_itself_tokens_without_admin(api_client_for, system, audit_mark):
    # given: a CI service account with a token
    account = ServiceAccountFactory(name="ci-credit")
    client = api_client_for(account)
    mark = audit_mark()
    # when / then: it sees its own tokens but cannot mint more (only admins issue service-account tokens)
    assert [t["name"] for t in client.get(LIST).json()["results"]] == ["test"]
    response = client.post(LIST, {"name": "more"}, format="json")
    assert response.status_code == 403
    assert mark.new(action="api_token.created")[0].outcome == "denied"


# ---- POST /api/v1/tokens/{token_id}/revoke/ -------------------------------------------------


@pytest.mark.django_db
def test_revoking_needs_authentication(anon_client, make_user, system):
    row, _ = accounts.token_create(actor=system, name="ci", user=make_user(), scopes=["read"])
    assert anon_client.post(revoke_url(row.token_id)).status_code == 401
    row.refresh_from_db()
    assert row.revoked_at is None


@pytest.mark.django_db
def test_someone_elses_token_is_not_found(api_client_for, make_user, system):
    # given: another person's token
    row, _ = accounts.token_create(actor=system, name="theirs", user=make_user(), scopes=["read"])
    client = api_client_for(make_user("viewer"))
    # when / then: 404, and it still works
    response = client.post(revoke_url(row.token_id))
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    row.refresh_from_db()
    assert row.revoked_at is None


@pytest.mark.django_db
def test_a_person_revokes_their_own_token(api_client_for, make_user, system, audit_mark):
    # given
    user = make_user()
    client = api_client_for(user, scopes=["read"])
    row, raw = accounts.token_create(actor=system, name="old-ci", user=user, scopes=["read"])
    mark = audit_mark()
    # when
    response = client.post(revoke_url(row.token_id))
    # then
    assert response.status_code == 200
    assert response.json()["status"] == "revoked"
    revoked = APIClient()
    revoked.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert revoked.get(LIST).status_code == 401
    assert mark.actions(target_type="api_token") == ["api_token.revoked"]
    # and revoking again changes nothing and writes nothing
    assert client.post(revoke_url(row.token_id)).status_code == 200
    assert mark.actions(target_type="api_token") == ["api_token.revoked"]


@pytest.mark.django_db
def test_an_admin_may_revoke_anyones_token(api_client_for, make_user, system, audit_mark):
    row, _ = accounts.token_create(actor=system, name="leaked", user=make_user(), scopes=["read"])
    client = api_client_for(make_user("admin"))
    mark = audit_mark()
    assert client.post(revoke_url(row.token_id)).status_code == 200
    assert mark.actions() == ["api_token.revoked"]


@pytest.mark.django_db
def test_the_token_api_is_in_the_openapi_schema(anon_client):
    schema = anon_client.get("/api/v1/schema/?format=json").json()
    assert "/api/v1/tokens/" in schema["paths"]
    assert "/api/v1/tokens/{token_id}/revoke/" in schema["paths"]
