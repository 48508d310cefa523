"""A release manager follows a rollout in the browser as the workers move it, then halts it from the page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, expect

from apps.accounts import services as accounts
from apps.accounts.principals import principal_for_user
from apps.audit.models import AuditEvent
from apps.core.principals import Principal
from apps.deployments import services as deployments
from apps.deployments.models import Deployment, DeploymentStep
from apps.rbac import services as rbac
from apps.releases import services as releases
from apps.releases.models import Environment
from tests.factories.accounts import TeamFactory
from tests.factories.policies import compliant_model, compliant_version

PASSWORD = "a long enough passphrase 42"

pytestmark = [pytest.mark.service, pytest.mark.django_db(transaction=True), pytest.mark.embedded_pass]


@pytest.fixture
def rollout():
    """A break-glass release of credit-scoring v1 being deployed (canary) to the production target prod-lab."""
    system = Principal.system("tests")
    Environment.objects.get_or_create(name="production", defaults={"production": True})
    credit = TeamFactory(name="credit")
    admin = accounts.user_create(actor=system, username="ada", password=PASSWORD)
    rbac.role_grant(actor=system, subject=admin, role="admin")
    max_ = accounts.user_create(actor=system, username="max", password=PASSWORD, first_name="Max", last_name="Power")
    rbac.role_grant(actor=system, subject=max_, role="release_manager")
    model = compliant_model(name="credit-scoring", owner_team=credit)
    compliant_version(model, number=1, sha256="c" * 64)
    deployments.target_create(actor=principal_for_user(admin), name="prod-lab", kind="local", environment="production")
    manager = principal_for_user(max_)
    release = releases.release_request_create(
        actor=manager,
        model_name="credit-scoring",
        number=1,
        environment="production",
        justification="checkout outage",
        change_reference="CHG-7",
        emergency=True,
    )
    return deployments.deployment_start(
        actor=manager, release_id=release.public_id, target="prod-lab", strategy="canary"
    )


def test_the_page_follows_the_rollout_and_halts_it(browser: Browser, live_server, rollout, screenshot_dir):
    base = live_server.url
    page = browser.new_context().new_page()
    blocked = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(base + "/login/")
    page.get_by_label("Username").fill("max")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    # given the deployment's page, opened from the top bar while nothing is applied yet
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Deployments").click()
    page.locator("#deployment-table").get_by_role("link", name="credit-scoring v1").click()
    expect(page.locator("#rollout-state")).to_contain_text("Pending")
    expect(page.locator("#traffic")).to_contain_text("No traffic applied yet.")

    # when a worker applies the first step and judges it (rows as the engine leaves them)
    now = timezone.now()
    Deployment.objects.filter(pk=rollout.pk).update(state="progressing", phase="analyse", traffic={"new": 100})
    DeploymentStep.objects.create(
        deployment=rollout,
        index=0,
        weight=10,
        started_at=now - timedelta(seconds=40),
        ready_at=now - timedelta(seconds=30),
        figures={"requests": 412, "errors": 3, "error_rate": 0.007282, "p99_ms": 182.5, "restarts": 0},
    )

    # then the page shows it within seconds, without a reload
    expect(page.locator("#rollout-state")).to_contain_text("Progressing", timeout=10_000)
    expect(page.locator("#rollout-step")).to_contain_text("1 of 2")
    expect(page.locator("#step-table")).to_contain_text("0.73%")
    expect(page.locator('#traffic-table tr[data-member="new"]')).to_contain_text("100 %")
    page.screenshot(path=str(screenshot_dir / "deployment-live.png"), full_page=True)

    # and the release manager halts it with a reason from the page
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_label("Why halt it?").fill("error reports from checkout")
    page.get_by_role("button", name="Halt").click()
    expect(page.get_by_text("Halted: live traffic goes back")).to_be_visible()
    expect(page.locator("#stop-reason")).to_contain_text("Max Power (max)")
    assert AuditEvent.objects.filter(action="deployment.halted", outcome="success").count() == 1
    # and the inventory says where it runs
    page.goto(base + "/")
    running = page.locator('td.running li[data-target="prod-lab"]')
    expect(running).to_contain_text("v1")
    expect(running).to_contain_text("Halted")
    page.screenshot(path=str(screenshot_dir / "inventory-running-where.png"), full_page=True)
    assert blocked == []


def test_an_admin_fixes_a_misspelt_setting_and_adds_the_target(browser: Browser, live_server, rollout, screenshot_dir):
    base = live_server.url
    page = browser.new_context().new_page()
    page.goto(base + "/login/")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    # given the targets page, from the top bar
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Targets").click()
    expect(page.locator('#target-table tr[data-target="prod-lab"]')).to_contain_text("Local serving processes")

    # when the admin adds a Kubernetes target with a misspelt setting
    page.get_by_label("Name").fill("gpu-eu")
    page.get_by_label("Kind").select_option("kubernetes")
    page.get_by_label("Settings").fill('{"namespace": "models", "replica": 3}')
    page.get_by_label("Credentials").fill('{"token": "typed-secret"}')
    page.get_by_role("button", name="Add target").click()

    # then the refusal sits next to the settings, the input is kept, the credentials are not
    expect(page.locator("#target-form")).to_contain_text("replica: Unknown key for a kubernetes target")
    expect(page.get_by_label("Settings")).to_have_value('{"namespace": "models", "replica": 3}')
    expect(page.get_by_label("Credentials")).to_have_value("")
    page.screenshot(path=str(screenshot_dir / "targets-form-error.png"), full_page=True)

    # and once fixed, the target is listed with its credentials set
    page.get_by_label("Settings").fill('{"namespace": "models"}')
    page.get_by_label("Credentials").fill('{"token": "typed-secret"}')
    page.get_by_role("button", name="Add target").click()
    row = page.locator('#target-table tr[data-target="gpu-eu"]')
    expect(row).to_contain_text("Kubernetes cluster")
    expect(row).to_contain_text("credentials set")
    assert "typed-secret" not in page.content()
