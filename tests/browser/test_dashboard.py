"""What a compliance officer clicks through: sign in, the inventory, a model, a version, the audit trail."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from apps.accounts import services as accounts
from apps.core.principals import Principal
from apps.rbac import services as rbac
from tests.factories.accounts import TeamFactory
from tests.factories.registry import DatasetFactory, ModelVersionFactory, RegisteredModelFactory

PASSWORD = "a long enough passphrase 42"
SHA = "3b7f0c2f6f0c9e1d4a5b6c7d8e9f00112233445566778899aabbccddeeff0011"

pytestmark = [pytest.mark.service, pytest.mark.django_db(transaction=True), pytest.mark.embedded_pass]


@pytest.fixture
def officer():
    """A compliance officer, a small inventory across two teams and risk tiers."""
    system = Principal.system("tests")
    user = accounts.user_create(
        actor=system, username="olivia", password=PASSWORD, first_name="Olivia", last_name="Okafor"
    )
    rbac.role_grant(actor=system, subject=user, role="compliance_officer")
    credit, marketing = TeamFactory(name="credit"), TeamFactory(name="marketing")
    train = DatasetFactory(name="loans-2024-train", owner_team=credit, sha256="a" * 64, row_count=120000)
    scoring = RegisteredModelFactory(
        name="credit-scoring",
        owner_team=credit,
        risk_tier="high",
        data_categories=["personal", "financial"],
        description="Scores consumer loan applications for manual review.",
        intended_use="Rank applications; a person decides.",
        limitations="Not validated for business loans.",
    )
    ModelVersionFactory(model=scoring, number=1, status="retired", sha256="1" * 64)
    version = ModelVersionFactory(
        model=scoring,
        number=2,
        status="ready",
        sha256=SHA,
        size=6144,
        source_repository="https://git.example.test/credit/scoring",
        source_commit="4f2a9c1e",
        ci_run_url="https://ci.example.test/runs/812",
        metrics={"auc": 0.8731, "accuracy": 0.912, "demographic_parity_difference": 0.031},
        model_card={"training_data": "Loans 2019-2024", "ethical_considerations": "Age is excluded as a feature."},
    )
    version.training_datasets.add(train)
    fraud = RegisteredModelFactory(
        name="card-fraud", owner_team=credit, risk_tier="unacceptable", data_categories=["payment_card"]
    )
    ModelVersionFactory(model=fraud, number=1, status="invalid", status_reason="pickle files are refused")
    uplift = RegisteredModelFactory(
        name="campaign-uplift", owner_team=marketing, risk_tier="minimal", data_categories=["personal"]
    )
    ModelVersionFactory(model=uplift, number=1, status="pending_verification")
    RegisteredModelFactory(name="churn-forecast", owner_team=marketing, risk_tier="limited", data_categories=[])
    return user


def test_a_compliance_officer_walks_from_the_inventory_to_a_version_and_the_audit_trail(
    page: Page, live_server, officer, screenshot_dir
):
    page.set_viewport_size({"width": 1360, "height": 900})

    # given: the dashboard sends a visitor to the sign-in page
    page.goto(live_server.url + "/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))

    # when: she signs in through the form
    page.get_by_label("Username").fill("olivia")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    # then: the inventory lists every model with its risk tier
    expect(page.get_by_role("heading", name=re.compile("Model inventory"))).to_be_visible()
    table = page.locator("#model-table")
    for name in ("credit-scoring", "card-fraud", "campaign-uplift", "churn-forecast"):
        expect(table.get_by_role("link", name=name, exact=True)).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "inventory.png"), full_page=True)

    # when: she filters to high-risk models
    page.get_by_label("Risk tier").select_option("high")
    page.get_by_role("button", name="Filter").click()

    # then: only the high-risk model remains
    expect(page).to_have_url(re.compile(r"risk_tier=high"))
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table.get_by_role("link", name="credit-scoring", exact=True)).to_be_visible()

    # when: she opens the model, then its latest version
    table.get_by_role("link", name="credit-scoring", exact=True).click()
    expect(page.get_by_role("heading", name="credit-scoring")).to_be_visible()
    page.locator("#version-table").get_by_role("link", name="v2", exact=True).click()

    # then: the version page shows the artifact's SHA-256, its status, lineage and metrics
    expect(page).to_have_url(re.compile(r"/models/credit-scoring/versions/2/$"))
    expect(page.locator("#artifact-sha256")).to_have_text(SHA)
    expect(page.locator("#version-status")).to_have_text("Ready")
    expect(page.get_by_text("4f2a9c1e")).to_be_visible()
    expect(page.locator("#metrics-table")).to_contain_text("demographic_parity_difference")
    page.screenshot(path=str(screenshot_dir / "version.png"), full_page=True)

    # when: she opens the audit trail from the navigation
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit trail").click()

    # then: the trail is there, and it holds her own sign-in
    expect(page).to_have_url(re.compile(r"/audit/"))
    expect(page.get_by_role("heading", name=re.compile("Audit trail", re.I))).to_be_visible()
    expect(page.get_by_text("user.logged_in").first).to_be_visible()


def test_a_wrong_password_shows_an_error_and_signs_nobody_in(page: Page, live_server, officer):
    page.goto(live_server.url + "/login/")
    page.get_by_label("Username").fill("olivia")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#login-error")).to_have_text("The username or password is not correct.")
    page.goto(live_server.url + "/")
    expect(page).to_have_url(re.compile(r"/login/"))
