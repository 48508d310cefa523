"""No raw value from a scanned dataset reaches a log, an error, a job, a run or an audit event.

presidio logs the text it was given in some of its messages (its IBAN recognizer logs
``Failed to validate text <value>`` at ERROR for an IBAN holding a Kelvin sign, which its
case-insensitive pattern takes for a K), and pyarrow quotes the row it cannot parse. The
engine redacts the libraries' records and replaces their errors; these tests seed
distinctive values, scan them in this process and through a real worker process, and look
for the values everywhere they could land.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from django.apps import apps as django_apps
from django.db import models

from apps.accounts.principals import principal_for_user
from apps.evidence import services as evidence
from apps.evidence.models import EvidenceRun
from apps.jobs.models import FINISHED, Job
from apps.registry import services as registry
from tests.registry.fixtures import upload
from tests.worker.test_evidence_processes import _ready, _run_state, shared_storage  # noqa: F401 - fixture
from tests.worker.test_processes import wait_for, workers  # noqa: F401 - fixture
from worker import compute
from worker.engines import loaders, pii

KELVIN_IBAN = "DE89 3704 0044 0532 0130 0\u212a"  # ends in KELVIN SIGN, not K: presidio logs it at ERROR
ROWS = [
    # name, e-mail, phone, card, IBAN, free text
    (
        "Ottoline Brightwater",
        "zelda.quintanilla7@examplemail.org",
        "+44 20 7946 0958",
        "4539 5787 6362 1486",
        "GB57QWRT20201587654321",
        "Call Ottoline Brightwater at +44 20 7946 0958 or write to zelda.quintanilla7@examplemail.org",
    ),
    (
        "Barnaby Quillfeather",
        "barnaby.quillfeather@examplemail.org",
        "+44 20 7946 0321",
        "5425 2334 3010 9903",
        KELVIN_IBAN,
        f"Refund to {KELVIN_IBAN} for Barnaby Quillfeather, card 5425 2334 3010 9903",
    ),
]
# A row written in Latin-1: the file verifies (the column reads as bytes) but a scan reads text and fails on it.
LATIN1_ROW = '3,"Zo\xeb Quillfeather","zoe.quillfeather@examplemail.org","a","b","c","d"\n'.encode("latin-1")
COLUMNS = ["full_name", "email", "phone", "card_number", "iban", "notes"]
SCHEMA = [
    {"name": "customer_id", "type": "int64", "role": "identifier"},
    {"name": "full_name", "type": "string", "role": "sensitive"},
    {"name": "email", "type": "string", "role": "identifier"},
    {"name": "phone", "type": "string", "role": "identifier"},
    {"name": "card_number", "type": "string", "role": "identifier"},
    {"name": "iban", "type": "string", "role": "identifier"},
    {"name": "notes", "type": "string", "role": "text"},
]


def _csv(rows=ROWS, extra: str = "") -> bytes:
    lines = ["customer_id," + ",".join(COLUMNS)]
    lines += [f"{i}," + ",".join(f'"{v}"' for v in row) for i, row in enumerate(rows, start=1)]
    return ("\n".join(lines) + "\n" + extra).encode()


def raw_values() -> set[str]:
    """Every seeded value, and the forms presidio's recognizers reduce them to (spaces and dashes dropped)."""
    values = {v for row in ROWS for v in row[:5]}
    values |= {v.replace(" ", "").replace("-", "") for v in values}
    values |= {"Ottoline", "Brightwater", "Quillfeather", "zelda.quintanilla7", "barnaby.quillfeather", "7946"}
    values |= {
        "DE8937040044053201300",
        "0532 0130",
        "zoe.quillfeather",
        "Zo\xeb",
    }  # the Kelvin-sign IBAN, whichever way its last letter prints
    return values


def leaks(text: str) -> list[str]:
    """The seeded values found in ``text``.

    A short all-digit fragment (the phone numbers' shared ``7946``) counts only where it stands
    as a number of its own, as a phone fragment would: inside a longer run of digits or hex
    (a checksum, a timing) it is chance, not the seeded value.
    """
    short_numbers = {v for v in raw_values() if v.isdigit() and len(v) <= 6}
    found = {v for v in short_numbers if _standalone(v).search(text)}
    return sorted(found | {v for v in raw_values() - short_numbers if v in text})


def _standalone(digits: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![0-9A-Za-z.]){digits}(?![0-9A-Za-z])")


def _params(**overrides) -> dict:
    return {
        "columns": COLUMNS,
        "entities": list(pii.SUPPORTED_ENTITIES),
        "score_threshold": 0.5,
        "language": "en",
        "allow_list": [],
        "sample_size": 100,
        **overrides,
    }


def test_presidio_s_error_records_keep_their_level_and_origin_but_not_the_value(caplog, tmp_path):
    # given a dataset whose IBAN column holds a value presidio's recognizer cannot compute
    path = tmp_path / "customers.csv"
    path.write_bytes(_csv())
    caplog.set_level(logging.DEBUG)

    # when it is scanned
    partial = compute.pii_scan_of(path, "csv", _params(), SCHEMA, len(ROWS), lambda *_: None)

    # then presidio reported the failure at ERROR, from its IBAN recognizer, without the value
    errors = [r for r in caplog.records if r.name == "presidio-analyzer" and r.levelno == logging.ERROR]
    assert errors, "the Kelvin-sign IBAN no longer makes presidio log: the test must seed another such value"
    assert all("iban_recognizer" in r.getMessage() and "withheld" in r.getMessage() for r in errors)
    # and no record of any logger holds a seeded value
    assert leaks("\n".join(r.getMessage() for r in caplog.records) + caplog.text) == []
    # and the scan still found what it should, with masked examples only
    summary = pii.summary(partial, compute.pii_config(_params()), "test")
    found = {(f["column"], f["entity_type"]) for f in summary["findings"]}
    assert {("email", "EMAIL_ADDRESS"), ("card_number", "CREDIT_CARD"), ("full_name", "PERSON")} <= found
    assert leaks(str(summary)) == []


def test_a_dataset_that_does_not_parse_fails_the_scan_naming_rows_and_columns_only(tmp_path):
    # given a file whose third row has a cell too many, holding an e-mail address
    path = tmp_path / "customers.csv"
    path.write_bytes(_csv(extra='3,"a","zelda.quintanilla7@examplemail.org","b","c","d","e","f"\n'))

    # when it is scanned
    with pytest.raises(compute.DataProblem) as failed:
        compute.pii_scan_of(path, "csv", _params(), SCHEMA, 3, lambda *_: None)

    # then the error names the scan, the columns and where, and holds no value, nor chains pyarrow's
    message = str(failed.value)
    assert "the PII scan failed at or after row 1" in message and "email, phone" in message
    assert leaks(message) == []
    assert failed.value.__suppress_context__ and failed.value.__cause__ is None


def test_a_scan_asked_for_columns_the_file_lacks_says_which():
    with pytest.raises(compute.DataProblem, match="'nope' has role 'wrong'"):
        compute.pii_scan_of(
            Path("/nonexistent"),
            "csv",
            _params(columns=["nope"]),
            [{"name": "nope", "role": "wrong"}],
            1,
            lambda *_: None,
        )


def test_pyarrow_s_reasons_drop_the_row_or_value_they_quote():
    assert (
        loaders.arrow_reason(ValueError("CSV parse error: Expected 3 columns, got 4: 1,jane@x.org,2,3"))
        == "CSV parse error: Expected 3 columns, got 4"
    )
    assert (
        loaders.arrow_reason(ValueError("CSV conversion error to int64: invalid value 'jane@x.org'"))
        == "CSV conversion error to int64: invalid value '…'"
    )


def _text_columns(model) -> list[str]:
    return [
        f.attname
        for f in model._meta.concrete_fields
        if isinstance(f, (models.CharField, models.TextField, models.JSONField, models.GenericIPAddressField))
    ]


def database_leaks() -> dict[str, list[str]]:
    """Every text and JSON column of every table, searched for the seeded values."""
    found = {}
    for model in django_apps.get_models():
        columns = _text_columns(model)
        if not columns:
            continue
        for row in model.objects.values_list("pk", *columns):
            hits = leaks(" ".join(str(v) for v in row[1:]))
            if hits:
                found[f"{model._meta.db_table} #{row[0]}"] = hits
    return found


@pytest.mark.broker
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(240)
def test_a_scan_on_a_real_worker_leaves_no_raw_value_in_its_log_or_any_table(
    shared_storage,  # noqa: F811 - the fixture imported above
    make_user,
    team,
    caplog,
):
    # given a worker whose log is kept, and a verified dataset of distinctive customer records,
    # one of which makes presidio log at ERROR
    caplog.set_level(logging.DEBUG)
    shared_storage.start("scanner")
    author = principal_for_user(make_user("contributor", team=team, member_of=[team]))
    dataset = registry.dataset_create(
        actor=author, name="customers", owner_team=team, file=upload(_csv(), "customers.csv"), schema=SCHEMA
    )
    _ready(dataset, "dataset")

    # and one whose last row is not UTF-8 (it verifies, as bytes, but cannot be scanned as text)
    broken = registry.dataset_create(
        actor=author,
        name="customers-latin1",
        owner_team=team,
        file=upload(_csv() + LATIN1_ROW, "latin1.csv"),
        schema=SCHEMA,
    )
    _ready(broken, "dataset")

    # when a PII scan (with a scrubbed copy) runs on the worker for each
    run = evidence.evidence_request(
        actor=author, kind="pii_scan", dataset_id=dataset.pk, parameters={"scrub": True}
    ).run
    failing = evidence.evidence_request(actor=author, kind="pii_scan", dataset_id=broken.pk).run
    for each in (run, failing):
        wait_for(
            "the scan to finish",
            lambda each=each: EvidenceRun.objects.filter(pk=each.pk, status__in=["succeeded", "failed"]).exists(),
            timeout=180,
            state=_run_state(each),
        )
        wait_for(
            "its job to finish", lambda each=each: Job.objects.filter(pk=each.job_id, status__in=FINISHED).exists()
        )
    run.refresh_from_db()
    failing.refresh_from_db()

    # then the scan found the seeded PII, with masked examples
    assert run.status == "succeeded", run.error
    found = {(f["column"], f["entity_type"]) for f in run.summary["findings"]}
    assert {("email", "EMAIL_ADDRESS"), ("card_number", "CREDIT_CARD"), ("iban", "IBAN_CODE")} <= found
    examples = [e for c in run.summary["columns"] for t in c["entities"] for e in t["examples"]]
    assert examples and all("*" in e for e in examples)
    # and the scan that could not read its data failed naming the columns and rows, not a value
    assert failing.status == "failed"
    expected = "the PII scan failed at or after row 1 of column(s) customer_id, full_name, email"
    assert failing.error.startswith(expected), failing.error
    # and no seeded value is in the worker's log, this test's logs, or any column of any table
    log = shared_storage.log_path("scanner").read_text(errors="replace")
    assert leaks(log) == []
    assert leaks(caplog.text) == []
    assert database_leaks() == {}
    # while the worker did log presidio's error, redacted
    assert "iban_recognizer.validate_result" in log and "withheld" in log
