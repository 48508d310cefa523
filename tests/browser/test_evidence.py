"""A contributor asks for a version's bias report on its page and reads the finished report."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from apps.accounts import services as accounts
from apps.core.principals import Principal
from apps.evidence.models import EvidenceRun
from apps.rbac import services as rbac
from apps.registry import services as registry
from tests.evidence.conftest import SCHEMA, csv_of, scored_rows
from tests.factories.accounts import TeamFactory
from tests.factories.registry import RegisteredModelFactory
from tests.registry.fixtures import job_of, upload
from worker.runner import run_job

PASSWORD = "a long enough passphrase 42"

pytestmark = [pytest.mark.service, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def scored_version():
    """cora, contributor on 'credit'; model 'churn' v1, predictions only, on a verified scored dataset."""
    import worker.tasks  # noqa: F401 - registers the job handlers run below

    system = Principal.system("tests")
    team = TeamFactory(name="credit")
    cora = accounts.user_create(actor=system, username="cora", password=PASSWORD)
    rbac.role_grant(actor=system, subject=cora, role="contributor", team=team)
    actor = Principal(kind="user", id=cora.pk, name="cora")
    RegisteredModelFactory(name="churn", owner_team=team)
    dataset = registry.dataset_create(
        actor=actor, name="scored", owner_team=team, file=upload(csv_of(scored_rows()), "scored.csv"), schema=SCHEMA
    )
    run_job(job_of(dataset).pk)
    version = registry.version_create(
        actor=actor, model_name="churn", format="predictions_only", evaluation_dataset_id=dataset.pk
    )
    run_job(job_of(version).pk)
    return version


def test_a_contributor_requests_a_bias_report_and_reads_it(page: Page, live_server, scored_version, screenshot_dir):
    page.set_viewport_size({"width": 1360, "height": 900})
    page.goto(live_server.url + "/login/")
    page.get_by_label("Username").fill("cora")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    # when: she opens the version and asks for the bias report
    page.goto(live_server.url + "/models/churn/versions/1/")
    page.get_by_role("button", name="Request bias report").click()

    # then: the run's page follows the queued run
    expect(page).to_have_url(re.compile(r"/evidence/[0-9a-f-]{36}/$"))
    expect(page.locator("#run-status")).to_have_text("Queued")

    # when: a worker runs it (here, in the test's process)
    run_job(EvidenceRun.objects.get().job_id)

    # then: the page, refreshing itself, shows the report
    expect(page.locator("#run-status")).to_have_text("Succeeded", timeout=10_000)
    expect(page.get_by_role("heading", name="By sex", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="By sex × region")).to_be_visible()
    expect(page.get_by_text("Demographic parity difference").first).to_be_visible()
    expect(page.get_by_text("highest selection").first).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "bias-report.png"), full_page=True)
