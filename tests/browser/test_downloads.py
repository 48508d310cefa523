"""An auditor reads a dataset's PII status and downloads the dataset from its page in a real browser."""

from __future__ import annotations

import hashlib
import io

import pytest
from playwright.sync_api import Page, expect

from apps.accounts import services as accounts
from apps.audit.models import AuditEvent
from apps.core.principals import Principal
from apps.core.storage import get_storage
from apps.rbac import services as rbac
from tests.factories.accounts import TeamFactory
from tests.factories.policies import evidence_run, pii_summary
from tests.factories.registry import DatasetFactory

PASSWORD = "a long enough passphrase 42"
CSV = b"name,email,label\n" + b"Ada Lovelace,ada@example.test,1\n" * 2000

pytestmark = [pytest.mark.service, pytest.mark.django_db(transaction=True), pytest.mark.embedded_pass]


@pytest.fixture
def auditor_and_dataset():
    system = Principal.system("tests")
    user = accounts.user_create(actor=system, username="aud", password=PASSWORD, first_name="Ana", last_name="Audit")
    rbac.role_grant(actor=system, subject=user, role="auditor")
    saved = get_storage().save(io.BytesIO(CSV), kind="datasets")
    dataset = DatasetFactory(
        name="applicants-2024",
        owner_team=TeamFactory(name="credit"),
        status="ready",
        uri=saved.key,
        sha256=saved.sha256,
        size=saved.size,
        row_count=2000,
    )
    evidence_run(kind="pii_scan", summary=pii_summary([("email", "feature", "EMAIL_ADDRESS")]), dataset=dataset)
    return user, dataset


def test_an_auditor_reads_the_pii_status_and_downloads_the_dataset(
    page: Page, live_server, auditor_and_dataset, screenshot_dir, tmp_path
):
    _, dataset = auditor_and_dataset
    page.set_viewport_size({"width": 1360, "height": 900})
    # given the auditor signed in, on the dataset's page
    page.goto(live_server.url + f"/datasets/{dataset.pk}/")
    page.get_by_label("Username").fill("aud")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    # then the page says the latest scan found e-mail addresses
    card = page.locator("#pii-status")
    expect(card).to_contain_text("PII found")
    expect(card.locator("#pii-types")).to_contain_text("EMAIL_ADDRESS")
    page.screenshot(path=str(screenshot_dir / "dataset-pii-status.png"), full_page=True)
    # when she presses Download
    with page.expect_download() as started:
        page.get_by_role("button", name="Download dataset").click()
    download = started.value
    # then the browser saves the dataset under its name, byte for byte, and the trail records it once
    assert download.suggested_filename == "applicants-2024.csv"
    saved = tmp_path / "got.csv"
    download.save_as(saved)
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == dataset.sha256
    assert AuditEvent.objects.filter(action="dataset.downloaded", outcome="success").count() == 1
    # and she is still on the dataset's page
    expect(page.locator("h1")).to_have_text("applicants-2024")
