"""Layout in a real browser: at a 1280 px window no page is wider than the window (a long Rego line scrolls
inside its box), and the webhook form, the releases filter and the request-release form show each field
under its label, styled like the other forms."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from apps.accounts import services as accounts
from apps.accounts.principals import principal_for_user
from apps.core.principals import Principal
from apps.policies import services as policies
from apps.rbac import services as rbac
from apps.releases.models import Environment
from tests.factories.accounts import TeamFactory
from tests.factories.registry import ModelVersionFactory, RegisteredModelFactory
from tests.policies.test_api import GOOD

PASSWORD = "a long enough passphrase 42"
LONG_LINE = "# " + "a very long comment that a policy author left on one line " * 12

pytestmark = [pytest.mark.service, pytest.mark.django_db(transaction=True), pytest.mark.embedded_pass]


@pytest.fixture
def world():
    """A compliance officer, a contributor of team credit, a ready version, two environments and a custom
    pack whose source holds a line about 700 characters long."""
    system = Principal.system("tests")
    credit = TeamFactory(name="credit")
    olga = accounts.user_create(actor=system, username="olga", password=PASSWORD, first_name="Olga", last_name="Berg")
    rbac.role_grant(actor=system, subject=olga, role="compliance_officer")
    carl = accounts.user_create(actor=system, username="carl", password=PASSWORD, first_name="Carl", last_name="Diaz")
    rbac.role_grant(actor=system, subject=carl, role="contributor", team=credit)
    Environment.objects.get_or_create(name="staging", defaults={"production": False})
    Environment.objects.get_or_create(
        name="production", defaults={"production": True, "requires_change_reference": True}
    )
    model = RegisteredModelFactory(name="credit-scoring", owner_team=credit, risk_tier="minimal", data_categories=[])
    ModelVersionFactory(model=model, number=1, status="ready", sha256="c" * 64)
    source = GOOD.replace("import rego.v1\n", "import rego.v1\n\n" + LONG_LINE + "\n")
    policies.policy_pack_create(actor=principal_for_user(olga), name="loan-limits", source=source)
    return olga, carl


def sign_in(page: Page, url: str, username: str) -> None:
    page.goto(url + "/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()


def overflow(page: Page) -> tuple[int, int]:
    """(document scroll width, window inner width) of the page as shown."""
    return tuple(page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]"))


def field_style(page: Page, selector: str) -> dict:
    return page.evaluate(
        """(selector) => { const s = getComputedStyle(document.querySelector(selector));
           return {border: s.borderTopWidth + ' ' + s.borderTopStyle, radius: s.borderTopLeftRadius,
                   padding: s.paddingLeft, font: s.fontSize, height: s.minHeight}; }""",
        selector,
    )


def label_above(page: Page, label: str, field: str) -> bool:
    """The label sits above its field (its bottom no lower than the field's top)."""
    return page.evaluate(
        """([label, field]) => document.querySelector(label).getBoundingClientRect().bottom
             <= document.querySelector(field).getBoundingClientRect().top + 1""",
        [label, field],
    )


def test_no_page_is_wider_than_a_1280_px_window(page: Page, live_server, world, screenshot_dir):
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, live_server.url, "olga")
    # the policy page with the long Rego line: the source box scrolls, the page does not
    page.goto(live_server.url + "/policies/loan-limits/")
    expect(page.locator("#source pre")).to_contain_text("a very long comment")
    width, window = overflow(page)
    assert width <= window
    inner = page.evaluate(
        "(() => { const p = document.querySelector('#source pre'); return [p.scrollWidth, p.clientWidth]; })()"
    )
    assert inner[0] > inner[1]  # the line is longer than the box: it scrolls inside it
    page.screenshot(path=str(screenshot_dir / "policy-long-line.png"), full_page=True)
    # and the other pages a compliance officer reads
    for path in (
        "/",
        "/models/credit-scoring/",
        "/models/credit-scoring/versions/1/",
        "/releases/",
        "/approvals/",
        "/policies/",
        "/audit/",
        "/webhooks/?team=credit",
        "/datasets/",
        "/tokens/",
    ):
        page.goto(live_server.url + path)
        width, window = overflow(page)
        assert width <= window, path


def test_the_webhook_form_is_styled_like_the_other_forms(page: Page, live_server, world, screenshot_dir):
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, live_server.url, "olga")
    page.goto(live_server.url + "/webhooks/?team=credit")
    form = page.locator("#webhook-create-form")
    expect(form.get_by_label("URL")).to_be_visible()
    expect(form.get_by_label("Description")).to_be_visible()
    expect(form.get_by_role("group", name="Events")).to_be_visible()
    # the URL field looks like the text field beside it (it was left to the browser's defaults)
    assert field_style(page, "#id_url") == field_style(page, "#id_description")
    assert label_above(page, 'label[for="id_url"]', "#id_url")
    # the event checkboxes sit one per line, not run together
    boxes = form.locator('input[name="events"]')
    assert boxes.count() >= 2
    first, second = boxes.nth(0).bounding_box(), boxes.nth(1).bounding_box()
    assert second["y"] > first["y"] + first["height"] / 2
    form.screenshot(path=str(screenshot_dir / "webhook-form.png"))


def test_the_releases_filter_labels_its_fields(page: Page, live_server, world, screenshot_dir):
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, live_server.url, "olga")
    page.goto(live_server.url + "/releases/")
    filters = page.locator("#release-filters")
    expect(filters.get_by_label("Status")).to_be_visible()
    expect(filters.get_by_label("Environment")).to_be_visible()
    # styled as the inventory's filter bar (a flex row of labelled fields), not an inline run of bare selects
    assert page.evaluate("getComputedStyle(document.querySelector('#release-filters')).display") == "flex"
    options = filters.get_by_label("Environment").locator("option").all_inner_texts()
    assert options == ["Any environment", "Production", "Staging"]
    # filtering works from the form
    filters.get_by_label("Status").select_option("approved")
    filters.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"status=approved"))
    filters.screenshot(path=str(screenshot_dir / "release-filters.png"))


def test_the_request_release_form_shows_each_field_under_its_label(page: Page, live_server, world, screenshot_dir):
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, live_server.url, "carl")
    page.goto(live_server.url + "/models/credit-scoring/versions/1/")
    form = page.locator("#request-release-form")
    for name in ("Environment", "Justification", "Change reference"):
        expect(form.get_by_label(name)).to_be_visible()
    for label, field in (
        ('label[for="release-environment"]', "#release-environment"),
        ('label[for="release-justification"]', "#release-justification"),
        ('label[for="release-change"]', "#release-change"),
    ):
        assert label_above(page, label, field), field
    assert field_style(page, "#release-change") == field_style(page, "#release-environment")
    # the request goes through, from the form as a person fills it in
    form.get_by_label("Environment").select_option("staging")
    form.get_by_label("Justification").fill("quarterly refresh")
    form.get_by_role("button", name="Request release").click()
    expect(page.locator("#release-status")).to_contain_text("Pending")
    page.screenshot(path=str(screenshot_dir / "request-release.png"), full_page=True)
