"""The dashboard's Download buttons and a dataset page's PII status.

A person who may download sees a Download button (a POST form with its CSRF token) on a verified
version's and dataset's page; others see none. Pressing it records the download and sends the browser
on to the signed link, which the same session follows to the file. A dataset's page says what its
latest PII scan found, read without writing and without a query per finding.
"""

from __future__ import annotations

import io

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.audit.models import AuditEvent
from apps.core.storage import get_storage
from apps.evidence.choices import EvidenceKind, RunStatus
from apps.evidence.models import EvidenceRun
from apps.jobs.models import Job
from tests.factories.policies import evidence_run, mark_false_positive, pii_summary
from tests.factories.registry import DatasetFactory, ModelVersionFactory

pytestmark = pytest.mark.django_db

CSV = b"name,email,label\nAda,ada@example.test,1\n"
WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


@pytest.fixture
def dataset(team):
    saved = get_storage().save(io.BytesIO(CSV), kind="datasets")
    return DatasetFactory(
        name="applicants", owner_team=team, status="ready", uri=saved.key, sha256=saved.sha256, size=saved.size
    )


@pytest.fixture
def version(model):
    saved = get_storage().save(io.BytesIO(b"onnx-bytes" * 100), kind="artifacts")
    return ModelVersionFactory(
        model=model, number=1, status="ready", artifact_uri=saved.key, sha256=saved.sha256, size=saved.size
    )


@pytest.fixture
def browser_as(make_user, team):
    def make(role: str | None):
        client = Client()
        client.force_login(make_user(role, team=team))
        return client

    return make


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


# --- the button --------------------------------------------------------------------------------


def test_the_download_button_shows_for_those_who_may_and_only_on_verified_bytes(browser_as, version, dataset):
    contributor, viewer = browser_as("contributor"), browser_as("viewer")
    version_page, dataset_page = "/models/churn/versions/1/", f"/datasets/{dataset.pk}/"
    for url, action in (
        (version_page, "/models/churn/versions/1/download/"),
        (dataset_page, f"{dataset_page}download/"),
    ):
        shown = page(contributor, url)
        assert f'action="{action}"' in shown and 'name="csrfmiddlewaretoken"' in shown
        assert 'id="download-form"' in shown
        assert 'id="download-form"' not in page(viewer, url)
    type(version).objects.filter(pk=version.pk).update(status="pending_verification")
    assert 'id="download-form"' not in page(contributor, version_page)


def test_pressing_download_records_it_and_the_browser_gets_the_file(browser_as, version):
    # given a contributor on the version's page
    browser = browser_as("contributor")
    # when they press Download
    pressed = browser.post("/models/churn/versions/1/download/")
    # then they are sent (See Other) to the signed link, the download is on the trail once,
    assert pressed.status_code == 303
    assert pressed["Location"].startswith("/api/v1/downloads/")
    assert AuditEvent.objects.filter(action="model_version.artifact_downloaded", outcome="success").count() == 1
    # and the same session follows the link to the file
    got = browser.get(pressed["Location"])
    assert got.status_code == 200 and b"".join(got.streaming_content) == b"onnx-bytes" * 100
    assert got["Content-Disposition"] == 'attachment; filename="churn-v1.onnx"'
    assert AuditEvent.objects.filter(action="model_version.artifact_downloaded").count() == 1


def test_the_form_needs_its_csrf_token(make_user, team, dataset):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(make_user("contributor", team=team))
    assert browser.post(f"/datasets/{dataset.pk}/download/").status_code == 403
    assert not AuditEvent.objects.filter(action="dataset.downloaded", outcome="success").exists()


def test_download_of_unverified_bytes_goes_back_to_the_page_with_the_reason(browser_as, version):
    type(version).objects.filter(pk=version.pk).update(status="invalid", status_reason="not an ONNX model")
    browser = browser_as("contributor")
    pressed = browser.post("/models/churn/versions/1/download/", follow=True)
    assert pressed.redirect_chain[-1][0] == "/models/churn/versions/1/"
    assert "not an ONNX model" in pressed.content.decode()


def test_a_viewer_pressing_download_anyway_is_refused(browser_as, dataset):
    assert browser_as("viewer").post(f"/datasets/{dataset.pk}/download/").status_code == 403
    assert AuditEvent.objects.filter(action="dataset.downloaded", outcome="denied").count() == 1


# --- PII status ------------------------------------------------------------------------------------


def pii_card(client, dataset) -> str:
    shown = page(client, f"/datasets/{dataset.pk}/")
    start = shown.index('id="pii-status"')
    return shown[start : shown.index("</div>\n\n", start)]


def test_a_dataset_never_scanned_says_so(browser_as, dataset):
    card = pii_card(browser_as("viewer"), dataset)
    assert 'data-state="not_scanned"' in card and "No PII scan has been run" in card


def test_a_scan_under_way_shows_its_progress(browser_as, dataset):
    run = evidence_run(kind=EvidenceKind.PII_SCAN, summary={}, dataset=dataset, status=RunStatus.RUNNING)
    job = Job.objects.create(kind="evidence.pii_scan", status="running", progress=40, message="reading rows")
    EvidenceRun.objects.filter(pk=run.pk).update(job=job)
    card = pii_card(browser_as("viewer"), dataset)
    assert 'data-state="scanning"' in card
    assert 'value="40"' in card and "reading rows" in card
    assert f"/evidence/{run.public_id}/" in card


def test_pii_found_shows_the_counts_per_type_without_false_positives(browser_as, dataset):
    # given a scan that found e-mail addresses in two columns and a name marked false positive
    summary = pii_summary([("email", "feature", "EMAIL_ADDRESS"), ("notes", "text", "EMAIL_ADDRESS")])
    summary["findings"].append(
        {"id": "name:PERSON", "column": "name", "entity_type": "PERSON", "count": 7, "rows": 7, "max_score": 0.9}
    )
    run = evidence_run(kind=EvidenceKind.PII_SCAN, summary=summary, dataset=dataset)
    mark_false_positive(run, "name:PERSON")
    # when a viewer opens the dataset's page
    card = pii_card(browser_as("viewer"), dataset)
    # then it reads "PII found" with the values per type and their columns, and links to the evidence
    assert 'data-state="pii_found"' in card and "PII found" in card
    assert "<code>EMAIL_ADDRESS</code></td><td>200</td>" in card
    assert "<code>email</code>, <code>notes</code>" in card
    assert "PERSON" not in card and "1 more finding marked false positive" in card
    assert f"/evidence/{run.public_id}/" in card


def test_a_clean_scan_and_a_scrubbed_copy(browser_as, dataset, team):
    copy = DatasetFactory(name="applicants (scrubbed)", owner_team=team, status="ready", source=dataset)
    summary = {**pii_summary([]), "scrubbed_dataset": {"id": copy.pk, "sha256": "c" * 64, "rows": 100}}
    evidence_run(kind=EvidenceKind.PII_SCAN, summary=summary, dataset=dataset)
    card = pii_card(browser_as("viewer"), dataset)
    assert 'data-state="clean"' in card and "found no personal data" in card
    assert "Scrubbed copy available" in card and f'href="/datasets/{copy.pk}/"' in card


def test_a_failed_scan_says_the_status_is_unknown(browser_as, dataset):
    run = evidence_run(kind=EvidenceKind.PII_SCAN, summary={}, dataset=dataset, status=RunStatus.FAILED)
    EvidenceRun.objects.filter(pk=run.pk).update(error="The dataset could not be read.")
    card = pii_card(browser_as("viewer"), dataset)
    assert 'data-state="failed"' in card and "could not be read" in card and "unknown" in card


def test_the_latest_scan_counts_even_behind_ten_newer_runs_and_the_page_writes_nothing(browser_as, dataset, model):
    # given an older clean scan, a newer one with findings, then ten bias runs of versions evaluated on it
    evidence_run(kind=EvidenceKind.PII_SCAN, summary=pii_summary([]), dataset=dataset)
    evidence_run(
        kind=EvidenceKind.PII_SCAN, summary=pii_summary([("email", "feature", "EMAIL_ADDRESS")]), dataset=dataset
    )
    for number in range(1, 11):
        version = ModelVersionFactory(model=model, number=number, evaluation_dataset=dataset)
        evidence_run(kind=EvidenceKind.BIAS, summary={}, version=version, dataset=dataset)
    browser = browser_as("viewer")
    page(browser, f"/datasets/{dataset.pk}/")  # the session's first request
    # when the page is read
    with CaptureQueriesContext(connection) as captured:
        card = pii_card(browser, dataset)
    # then it shows the newest scan, and nothing was written
    assert 'data-state="pii_found"' in card
    assert [q["sql"] for q in captured.captured_queries if q["sql"].lstrip().upper().startswith(WRITES)] == []


def test_the_pii_status_costs_the_same_queries_for_one_finding_or_many(browser_as, dataset, team):
    browser = browser_as("viewer")
    one = evidence_run(
        kind=EvidenceKind.PII_SCAN, summary=pii_summary([("c0", "text", "EMAIL_ADDRESS")]), dataset=dataset
    )
    page(browser, f"/datasets/{dataset.pk}/")
    with CaptureQueriesContext(connection) as few:
        page(browser, f"/datasets/{dataset.pk}/")
    EvidenceRun.objects.filter(pk=one.pk).delete()
    many = [(f"c{i}", "text", kind) for i in range(30) for kind in ("EMAIL_ADDRESS", "PHONE_NUMBER", "PERSON")]
    run = evidence_run(kind=EvidenceKind.PII_SCAN, summary=pii_summary(many), dataset=dataset)
    for column, _, kind in many[:10]:
        mark_false_positive(run, f"{column}:{kind}")
    with CaptureQueriesContext(connection) as lots:
        shown = page(browser, f"/datasets/{dataset.pk}/")
    assert "PHONE_NUMBER" in shown
    assert len(lots.captured_queries) == len(few.captured_queries)
