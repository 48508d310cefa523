"""What an admin clicks through on the Access page: a team, a member, a role on that team, its revocation."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from apps.accounts import services as accounts
from apps.core.principals import Principal
from apps.rbac import services as rbac
from apps.rbac.models import RoleBinding

PASSWORD = "a long enough passphrase 42"

pytestmark = [pytest.mark.service, pytest.mark.django_db(transaction=True), pytest.mark.embedded_pass]


@pytest.fixture
def people():
    system = Principal.system("tests")
    admin = accounts.user_create(actor=system, username="ada", password=PASSWORD)
    rbac.role_grant(actor=system, subject=admin, role="admin")
    accounts.user_create(actor=system, username="ben", password=PASSWORD)
    auditor = accounts.user_create(actor=system, username="ida", password=PASSWORD)
    rbac.role_grant(actor=system, subject=auditor, role="auditor")
    return admin


def sign_in(page: Page, url: str, username: str) -> None:
    page.goto(url + "/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/login/"))


def test_an_admin_creates_a_team_adds_a_member_and_grants_then_revokes_a_role(
    page: Page, live_server, people, screenshot_dir
):
    page.set_viewport_size({"width": 1360, "height": 900})
    sign_in(page, live_server.url, "ada")

    # when: she opens Access from the navigation and creates a team
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Access").click()
    expect(page).to_have_url(re.compile(r"/access/"))
    team_form = page.locator("#team-create-form")
    team_form.get_by_label("Name", exact=True).fill("risk-ops")
    team_form.get_by_role("button", name="Create team").click()

    # and adds ben to it
    member_form = page.locator("#member-add-form")
    member_form.get_by_label("Team").fill("risk-ops")
    member_form.get_by_label("Username", exact=True).fill("ben")
    member_form.get_by_role("button", name="Add member").click()

    # and makes ben a reviewer on that team
    grant_form = page.locator("#role-grant-form")
    grant_form.get_by_label("Grant to").select_option("user")
    grant_form.get_by_label("Name", exact=True).fill("ben")
    grant_form.get_by_label("Role").select_option("reviewer")
    grant_form.get_by_label("On team").fill("risk-ops")
    grant_form.get_by_role("button", name="Grant role").click()

    # then: the page shows the team with its member and the new binding, which is in force
    expect(page.get_by_role("alert").or_(page.locator(".alert-success")).first).to_be_visible()
    expect(page.locator("body")).to_contain_text("risk-ops")
    binding = RoleBinding.objects.get(user__username="ben", role="reviewer")
    row = page.locator("#role-binding-table tr", has_text="reviewer").filter(has_text="ben")
    expect(row).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "access.png"), full_page=True)

    # when: she revokes it (confirming the browser's dialog)
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()

    # then: the binding is gone, from the page and from the database
    expect(page.locator("#role-binding-table tr", has_text="reviewer").filter(has_text="ben")).to_have_count(0)
    assert not RoleBinding.objects.filter(pk=binding.pk).exists()


def test_an_auditor_reads_the_access_page_without_any_form(page: Page, live_server, people):
    sign_in(page, live_server.url, "ida")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Access").click()
    expect(page.locator("tr", has_text="ada").first).to_be_visible()
    expect(page.locator("form#role-grant-form")).to_have_count(0)
    expect(page.get_by_role("button", name="Revoke")).to_have_count(0)
