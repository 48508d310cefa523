"""Bearer-token API requests skip the browser's middleware (sessions, CSRF, the session user, messages).

What a client relies on stays: the token decides who is asking, the security headers and the request
id are on every answer, and a browser session keeps its CSRF protection.
"""

from __future__ import annotations

import pytest
from django.test import Client

from apps.audit.models import AuditEvent
from tests.registry.fixtures import contributor, model  # noqa: F401, F811

pytestmark = pytest.mark.django_db


def test_a_token_request_gets_no_session_and_keeps_its_headers(make_user, api_client_for):
    # given a user's token
    client = api_client_for(make_user())

    # when it lists models
    response = client.get("/api/v1/models/", HTTP_X_REQUEST_ID="token-lean-1")

    # then it is answered without a session or cookie, with the usual headers
    assert response.status_code == 200
    assert response.cookies == {} and "Set-Cookie" not in response
    assert "Cookie" not in response.get("Vary", "")
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Request-ID"] == "token-lean-1"


def test_with_a_bad_token_a_signed_in_browser_session_does_not_count(make_user):
    # given a browser signed in as a user, sending a bearer token that is not valid
    user = make_user()
    browser = Client()
    browser.force_login(user)

    # when it calls the API with that token
    response = browser.get("/api/v1/models/", HTTP_AUTHORIZATION="Bearer assay_nope_nope")

    # then the token decides: 401, and nothing is recorded in the session user's name
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="assay"'
    assert response.json()["code"] == "not_authenticated"
    assert not AuditEvent.objects.filter(actor_type="user", actor_id=str(user.pk)).exists()


def test_a_browser_session_on_the_api_still_needs_its_csrf_token(make_user, contributor, model):  # noqa: F811
    # given a signed-in browser that checks CSRF like a real one
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(contributor)

    # when it posts to the API without the CSRF token, then with it
    refused = browser.post("/api/v1/models/churn/versions/", {"format": "predictions_only"})
    page = browser.get("/models/churn/")
    token = page.cookies["csrftoken"].value if "csrftoken" in page.cookies else None

    # then the first is refused for CSRF and the dashboard page still hands out the token
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    assert page.status_code == 200 and token


def test_a_dashboard_page_with_a_bearer_header_still_uses_the_session(make_user):
    # given a signed-in browser that also sends a bearer header to a dashboard page
    browser = Client()
    browser.force_login(make_user())

    # when it opens the model list
    response = browser.get("/", HTTP_AUTHORIZATION="Bearer assay_nope_nope")

    # then the page is rendered for the session's user, not a sign-in redirect (the header only counts under /api/)
    assert response.status_code == 200
    assert response.wsgi_request.user.is_authenticated
