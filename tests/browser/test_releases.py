"""One person requests a release in the browser; a reviewer and a compliance officer approve it there."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from apps.accounts import services as accounts
from apps.core.principals import Principal
from apps.rbac import services as rbac
from apps.releases.gate_decisions import gate_decisions_refresh
from apps.releases.models import Environment, ReleaseRequest
from tests.factories.accounts import TeamFactory
from tests.factories.policies import compliant_model, compliant_version

PASSWORD = "a long enough passphrase 42"

pytestmark = [pytest.mark.service, pytest.mark.django_db(transaction=True), pytest.mark.embedded_pass]


@pytest.fixture
def people():
    """A high-risk model's version by its author, a requester, a reviewer and a compliance officer."""
    system = Principal.system("tests")
    Environment.objects.get_or_create(name="staging", defaults={"production": False})
    Environment.objects.get_or_create(
        name="production", defaults={"production": True, "requires_change_reference": True}
    )
    credit = TeamFactory(name="credit")
    users = {}
    for name, role, scope in [
        ("ava", "contributor", credit),
        ("rex", "contributor", credit),
        ("rita", "reviewer", credit),
        ("cleo", "compliance_officer", None),
    ]:
        users[name] = accounts.user_create(actor=system, username=name, password=PASSWORD)
        rbac.role_grant(actor=system, subject=users[name], role=role, team=scope)
    model = compliant_model(name="credit-scoring", owner_team=credit, risk_tier="high")
    version = compliant_version(model, number=1, created_by=users["ava"], sha256="c" * 64)
    # the version's gate decisions, as the reaction to its verification makes them
    gate_decisions_refresh(version_ids=[version.pk], reason="verified")
    return users


def sign_in(browser: Browser, base: str, username: str) -> Page:
    page = browser.new_context().new_page()
    page.goto(base + "/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    return page


def approve_from_the_queue(page: Page, base: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Approvals").click()
    queue = page.locator("#approval-queue")
    expect(queue).to_contain_text("credit-scoring v1")
    queue.get_by_role("link", name="Decide").click()
    expect(page.locator("#rules")).to_contain_text("security")
    page.get_by_label(re.compile("Comment")).fill("Evidence reviewed.")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_text("Your approval is recorded.")).to_be_visible()


def test_one_requests_a_release_and_two_others_approve_it(browser: Browser, live_server, people, screenshot_dir, react):
    base = live_server.url
    # given rex, a contributor, on the version page
    rex = sign_in(browser, base, "rex")
    rex.goto(base + "/models/credit-scoring/versions/1/")
    gates = rex.locator("#release-gates")
    expect(gates.locator('tr[data-environment="production"]')).to_contain_text("No release requested")
    # when he requests a production release with its change reference
    rex.get_by_label("Environment").select_option("production")
    rex.get_by_label("Justification").fill("Quarterly model refresh")
    rex.get_by_label(re.compile("Change reference")).fill("CHG-1042")
    rex.get_by_role("button", name="Request release").click()
    # then the release page shows it waiting, with what it needs
    expect(rex.locator("#release-status")).to_contain_text("Pending approval")
    expect(rex.locator("#approvals")).to_contain_text("Compliance officer: 0 of 1")
    expect(rex.locator("#decide-form")).to_have_count(0)
    # when the reviewer approves it from her queue
    rita = sign_in(browser, base, "rita")
    approve_from_the_queue(rita, base)
    expect(rita.locator("#release-status")).to_contain_text("Pending approval")
    # and the compliance officer approves it from his
    cleo = sign_in(browser, base, "cleo")
    approve_from_the_queue(cleo, base)
    # then the release is approved and the version's production gate is open
    expect(cleo.locator("#release-status")).to_contain_text("Approved")
    cleo.screenshot(path=str(screenshot_dir / "release-approved.png"), full_page=True)
    assert ReleaseRequest.objects.get().status == "approved"
    react()  # the workers' reactions to the request and the approvals re-make the gate's decision
    rex.goto(base + "/models/credit-scoring/versions/1/")
    expect(rex.locator('#release-gates tr[data-environment="production"]')).to_contain_text("Allowed")
    # and the reviewer's queue is empty
    rita.get_by_role("navigation", name="Main").get_by_role("link", name="Approvals").click()
    expect(rita.get_by_text("Nothing waits for you.")).to_be_visible()
