"""A contributor asks for a version's bias report on its page and reads the finished report."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from apps.accounts import services as accounts
from apps.core.principals import Principal
from apps.evidence.models import EvidenceRun, FindingReview
from apps.jobs import services as jobs
from apps.rbac import services as rbac
from apps.registry import services as registry
from tests.evidence.conftest import SCHEMA, csv_of, scored_rows
from tests.factories.accounts import TeamFactory
from tests.factories.registry import RegisteredModelFactory
from tests.registry.fixtures import job_of, upload
from worker.runner import run_job

PASSWORD = "a long enough passphrase 42"

pytestmark = [pytest.mark.service, pytest.mark.django_db(transaction=True), pytest.mark.embedded_pass]


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


def worker_alive() -> None:
    """A worker's heartbeat, as a running worker writes it (without one a queued run waits "for a worker")."""
    jobs.worker_heartbeat(name="browser-test:1", kind="database", beat=False, started_at=timezone.now())


def test_a_contributor_requests_a_bias_report_and_reads_it(page: Page, live_server, scored_version, screenshot_dir):
    page.set_viewport_size({"width": 1360, "height": 900})
    page.goto(live_server.url + "/login/")
    page.get_by_label("Username").fill("cora")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    # when: she opens the version and asks for the bias report, with a worker alive
    worker_alive()
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


@pytest.fixture
def explained_world():
    """cora, contributor on 'credit', with a skops version of 'churn'; bob, reviewer; a customer table."""
    import io

    import pyarrow.csv as pacsv

    import worker.tasks  # noqa: F401 - registers the job handlers run below
    from apps.demo import artifacts as demo
    from apps.demo import customers

    system = Principal.system("tests")
    team = TeamFactory(name="credit")
    cora = accounts.user_create(actor=system, username="cora", password=PASSWORD)
    rbac.role_grant(actor=system, subject=cora, role="contributor", team=team)
    bob = accounts.user_create(actor=system, username="bob", password=PASSWORD)
    rbac.role_grant(actor=system, subject=bob, role="reviewer", team=team)
    actor = Principal(kind="user", id=cora.pk, name="cora")
    RegisteredModelFactory(name="churn", owner_team=team)
    data = demo.make_data(11, ["income", "tenure", "balance", "visits"], rows=200)
    dataset = registry.dataset_create(
        actor=actor, name="eval", owner_team=team, file=upload(data.csv_bytes(), "eval.csv"), schema=data.schema()
    )
    run_job(job_of(dataset).pk)
    version = registry.version_create(
        actor=actor,
        model_name="churn",
        artifact=upload(demo.skops_gradient_boosting(data), "model.skops"),
        format="skops",
        evaluation_dataset_id=dataset.pk,
    )
    run_job(job_of(version).pk)
    table, _ = customers.customer_table(120, seed=2)
    out = io.BytesIO()
    pacsv.write_csv(table, out)
    people = registry.dataset_create(
        actor=actor,
        name="customers",
        owner_team=team,
        file=upload(out.getvalue(), "customers.csv"),
        schema=customers.column_schema(),
    )
    run_job(job_of(people).pk)
    return people


def _sign_in(page: Page, live_server, username: str) -> None:
    page.goto(live_server.url + "/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_an_explainability_report_and_a_pii_review_in_the_browser(
    page: Page, live_server, explained_world, screenshot_dir
):
    page.set_viewport_size({"width": 1360, "height": 900})
    _sign_in(page, live_server, "cora")
    # when: cora asks for the version's explainability report and a worker computes it
    worker_alive()
    page.goto(live_server.url + "/models/churn/versions/1/")
    page.get_by_role("button", name="Request explainability report").click()
    expect(page.locator("#run-status")).to_have_text("Queued")
    run_job(EvidenceRun.objects.get(kind="explainability").job_id)
    # then: the report draws the importance bars, the beeswarm and the local waterfalls
    expect(page.locator("#run-status")).to_have_text("Succeeded", timeout=10_000)
    expect(page.get_by_role("img", name="Feature importance")).to_be_visible()
    expect(page.get_by_role("img", name="Beeswarm of SHAP values")).to_be_visible()
    expect(page.locator(".local-explanation").first).to_be_visible()
    expect(page.locator("#explain-checks")).to_contain_text("passed")
    page.screenshot(path=str(screenshot_dir / "explainability-report.png"), full_page=True)

    # when: she asks for a PII scan of the customer table from its page, and a worker runs it
    page.goto(live_server.url + f"/datasets/{explained_world.pk}/")
    page.get_by_role("button", name="Scan for PII").click()
    run_job(EvidenceRun.objects.get(kind="pii_scan").job_id)
    expect(page.locator("#run-status")).to_have_text("Succeeded", timeout=10_000)
    expect(page.locator("#pii-columns")).to_contain_text("EMAIL_ADDRESS")
    # and as a contributor she may read it but not review it
    expect(page.locator(".review-form")).to_have_count(0)
    run_url = page.url

    # when: bob, a reviewer, marks the street addresses a false positive
    page.context.clear_cookies()
    _sign_in(page, live_server, "bob")
    page.goto(run_url)
    before = page.locator("#unresolved-count").inner_text()
    row = page.locator('tr[data-finding^="street_address:"]').first
    row.get_by_label("Reason").fill("Branch addresses, not customers'")
    # the verdict has no default: saving without choosing one is refused by the form, and nothing is recorded
    row.get_by_role("button", name="Save").click()
    assert row.get_by_label("Verdict").evaluate("select => select.validity.valueMissing")
    assert not FindingReview.objects.exists()
    row.get_by_label("Verdict").select_option("false_positive")
    row.get_by_role("button", name="Save").click()
    # then: the finding is shown as dismissed and counted apart, with who dismissed it and why
    expect(page.get_by_role("status").filter(has_text="marked false positive")).to_be_visible()
    dismissed = page.locator('tr[data-finding^="street_address:"]').first
    expect(dismissed).to_have_class(re.compile("finding-dismissed"))
    expect(dismissed.locator(".finding-verdict")).to_contain_text("Branch addresses, not customers'")
    assert page.locator("#unresolved-count").inner_text() != before
    page.screenshot(path=str(screenshot_dir / "pii-report.png"), full_page=True)
