# ruff: noqa: F811 - pytest fixtures imported from other modules are parameters here
"""A compliance officer exports a release's report and evidence pack from its page in a real browser, and
the pack she saves passes the offline verifier."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from playwright.sync_api import Page, expect

from apps.accounts import services as accounts
from apps.audit import checkpoints
from apps.core.principals import Principal
from apps.rbac import services as rbac
from apps.reports.certificate import load_report_signer
from apps.reports.models import Report
from tests.releases.conftest import (  # noqa: F401 - fixtures shared with the release tests
    author,
    decided,
    model,
    production,
    request_release,
    requester,
    reviewer,
    staging,
)
from tests.reports.conftest import approved  # noqa: F401 - an approved release with real evidence
from worker.runner import run_job

PASSWORD = "a long enough passphrase 42"
SCRIPT = Path(django_settings.BASE_DIR) / "scripts" / "verify_pack.py"

pytestmark = [pytest.mark.service, pytest.mark.django_db(transaction=True), pytest.mark.embedded_pass]


@pytest.fixture
def officer_login():
    system = Principal.system("tests")
    user = accounts.user_create(actor=system, username="cleo", password=PASSWORD, first_name="Cleo", last_name="C")
    rbac.role_grant(actor=system, subject=user, role="compliance_officer")
    checkpoints.load_signing_key(create=True)
    load_report_signer(create=True)
    return user


def test_an_officer_exports_an_evidence_pack_that_verifies(
    page: Page, live_server, approved, officer_login, screenshot_dir, tmp_path
):
    page.set_viewport_size({"width": 1360, "height": 900})
    # given the officer signed in, on the release's page
    page.goto(live_server.url + f"/releases/{approved.public_id}/")
    page.get_by_label("Username").fill("cleo")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    # when she presses "Export evidence pack"
    page.get_by_role("button", name="Export evidence pack").click()
    # then the report's page shows it queued, with its progress
    expect(page.locator("#report-state .report-status")).to_have_attribute("data-status", "queued")
    report = Report.objects.get()
    # and once a worker has generated it, the page offers the signed PDF and the pack
    assert run_job(report.job_id) == "succeeded"
    page.get_by_role("link", name="Refresh").click()
    expect(page.locator("#report-state .report-status")).to_have_attribute("data-status", "succeeded")
    page.screenshot(path=str(screenshot_dir / "report-ready.png"), full_page=True)
    with page.expect_download() as started:
        page.locator("#download-pack").click()
    saved = tmp_path / started.value.suggested_filename
    started.value.save_as(saved)
    assert saved.name.endswith("-evidence-pack.zip")
    # and the pack she saved passes the offline verifier with the published key
    key = tmp_path / "audit-log.pem"
    key.write_text(checkpoints.public_pem(checkpoints.load_signing_key().public_key()))
    result = subprocess.run(
        [sys.executable, "-I", str(SCRIPT), str(saved), "--key", str(key)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    with page.expect_download() as pdf:
        page.locator("#download-pdf").click()
    assert pdf.value.suggested_filename.endswith(".pdf")
