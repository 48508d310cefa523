"""A team proposes to loosen its model's facts; a compliance officer finds it in the queue and approves it."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from apps.accounts import services as accounts
from apps.accounts.principals import principal_for_user
from apps.core.principals import Principal
from apps.rbac import services as rbac
from apps.registry import services as registry
from apps.registry.models import RegisteredModel
from tests.browser.test_releases import PASSWORD, sign_in
from tests.factories.accounts import TeamFactory
from tests.factories.registry import RegisteredModelFactory

pytestmark = [pytest.mark.service, pytest.mark.django_db(transaction=True), pytest.mark.embedded_pass]


@pytest.fixture
def proposed():
    system = Principal.system("tests")
    team = TeamFactory(name="marketing")
    mark = accounts.user_create(actor=system, username="mark", password=PASSWORD)
    rbac.role_grant(actor=system, subject=mark, role="contributor", team=team)
    carol = accounts.user_create(actor=system, username="carol", password=PASSWORD)
    rbac.role_grant(actor=system, subject=carol, role="compliance_officer")
    RegisteredModelFactory(
        name="emotion-recognition", owner_team=team, risk_tier="unacceptable", data_categories=["biometric"]
    )
    return registry.model_update(
        actor=principal_for_user(mark),
        name="emotion-recognition",
        changes={"risk_tier": "minimal", "data_categories": []},
        reason="It only counts smiles",
    ).facts_change


def test_a_compliance_officer_approves_a_pending_facts_change_from_the_queue(
    browser: Browser, live_server, proposed, screenshot_dir
):
    base = live_server.url
    # given the team sees its change waiting, without a way to approve it
    mark = sign_in(browser, base, "mark")
    mark.goto(base + "/models/emotion-recognition/")
    expect(mark.locator("#facts-change")).to_contain_text("It only counts smiles")
    expect(mark.locator("#facts-approve")).to_have_count(0)
    # when carol opens it from her queue and approves it with a reason
    carol = sign_in(browser, base, "carol")
    carol.get_by_role("navigation", name="Main").get_by_role("link", name="Approvals").click()
    queue = carol.locator("#facts-change-queue")
    expect(queue).to_contain_text("emotion-recognition")
    queue.get_by_role("link", name="Decide").click()
    diff = carol.locator("#facts-change-diff")
    expect(diff).to_contain_text("unacceptable")
    expect(diff).to_contain_text("minimal")
    carol.screenshot(path=str(screenshot_dir / "facts-change.png"), full_page=True)
    carol.get_by_label("Reason (required)").fill("Re-assessed: no biometric processing remains")
    carol.get_by_role("button", name="Approve and apply").click()
    # then the model has its new facts and nothing waits
    expect(carol.get_by_text("The change is approved and applied.")).to_be_visible()
    expect(carol.locator("#facts-change")).to_have_count(0)
    model = RegisteredModel.objects.get(name="emotion-recognition")
    assert (model.risk_tier, model.data_categories) == ("minimal", [])
