"""In a real browser enforcing the Content-Security-Policy, the API docs page (Swagger UI) and the
dashboard work with nothing refused: the policy blocks no script, style or image they need."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from apps.accounts import services as accounts
from apps.core.principals import Principal
from apps.rbac import services as rbac

PASSWORD = "a long enough passphrase 42"

pytestmark = [pytest.mark.service, pytest.mark.django_db(transaction=True), pytest.mark.embedded_pass]


def refusals(page: Page) -> list[str]:
    """Console messages in which the browser reports a CSP refusal."""
    seen: list[str] = []
    page.on("console", lambda m: seen.append(m.text) if "Content Security Policy" in m.text else None)
    return seen


def test_the_api_docs_page_renders_the_api_under_the_policy(page: Page, live_server):
    refused = refusals(page)

    response = page.goto(f"{live_server.url}/api/v1/docs/")

    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Assay API", timeout=15000)
    expect(page.locator(".opblock").first).to_be_visible()
    assert refused == []


def test_the_dashboard_signs_in_and_works_under_the_policy(page: Page, live_server):
    system = Principal.system("tests")
    user = accounts.user_create(actor=system, username="olivia", password=PASSWORD)
    rbac.role_grant(actor=system, subject=user, role="admin")
    refused = refusals(page)

    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "olivia")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    for path in ("/", "/tokens/", "/access/", "/policies/", "/audit/"):
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, path
        assert "content-security-policy" in response.headers

    page.goto(f"{live_server.url}/tokens/")
    page.fill("input[name=name]", "browser-made")
    page.click("form button[type=submit]:has-text('Create')")
    expect(page.locator("body")).to_contain_text("assay_")
    assert refused == []
