"""Report PDFs: paged layout from the shared template, the PAdES signature, the offline checker, the key files."""

from __future__ import annotations

import copy
import datetime
import hashlib
import importlib.util
import io
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.x509.oid import NameOID
from django.conf import settings as django_settings
from django.template.loader import render_to_string
from django.test import override_settings
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_string
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pypdf import PdfReader

from apps.reports.certificate import (
    ReportSignerMissing,
    certificate_fingerprint,
    certificate_pem,
    load_report_signer,
)
from worker.reports.pdf import render_pdf, sign_pdf, validate_pdf

pytestmark = pytest.mark.embedded_pass

CHECKER = Path(django_settings.BASE_DIR) / "scripts" / "pdf_signature.py"
ROOT_HASH = hashlib.sha256(b"checkpoint root").hexdigest()
ROWS = 300
A4 = (595.3, 841.9)  # points

SAMPLE_REPORT = """{% extends "reports/base_report.html" %}
{% block title %}Audit trail report{% endblock %}
{% block content %}
<h2>Events per day</h2>
<figure class="chart">
  <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 400 120" role="img" aria-label="Events per day">
    {% for bar in bars %}
      <rect x="{{ bar.x }}" y="{{ bar.y }}" width="18" height="{{ bar.height }}" fill="#2d5c88"/>
    {% endfor %}
    <line x1="0" y1="110" x2="400" y2="110" stroke="#1d2329"/>
  </svg>
  <figcaption>Events recorded per day in the period.</figcaption>
</figure>
<h2>Events</h2>
<table>
  <thead>
    <tr><th class="number">Sequence</th><th>Recorded action</th><th>Actor name</th><th>Event digest</th></tr>
  </thead>
  <tbody>
  {% for row in rows %}
    <tr><td class="number">{{ row.seq }}</td><td>{{ row.action }}</td><td>{{ row.actor }}</td>
        <td><code class="digest">{{ row.digest }}</code></td></tr>
  {% endfor %}
  </tbody>
</table>
{% endblock %}
"""


def checker_module():
    """scripts/pdf_signature.py loaded from its file, as an auditor would run it: no project imports."""
    spec = importlib.util.spec_from_file_location("pdf_signature", CHECKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check_pdf_signature = checker_module().check_pdf_signature


def digest(n: int) -> str:
    return hashlib.sha256(f"event {n}".encode()).hexdigest()


def sample_templates() -> list[dict]:
    """The project's template settings plus an in-memory sample report that extends base_report.html."""
    templates = copy.deepcopy(django_settings.TEMPLATES)
    templates[0]["APP_DIRS"] = False
    templates[0]["OPTIONS"]["loaders"] = [
        ("django.template.loaders.locmem.Loader", {"reports/sample.html": SAMPLE_REPORT}),
        "django.template.loaders.filesystem.Loader",
        "django.template.loaders.app_directories.Loader",
    ]
    return templates


def sample_html() -> str:
    report = {
        "kind": "Audit trail",
        "scope": "team marketing",
        "period_start": datetime.date(2026, 1, 1),
        "period_end": datetime.date(2026, 3, 31),
        "generated_by": "carol",
        "generated_at": datetime.datetime(2026, 4, 2, 9, 30, tzinfo=datetime.UTC),
        "checkpoint_tree_size": 4096,
        "checkpoint_root_hash": ROOT_HASH,
    }
    rows = [{"seq": n, "action": "model.updated", "actor": "dana", "digest": digest(n)} for n in range(1, ROWS + 1)]
    bars = [{"x": 10 + 22 * i, "y": 110 - h, "height": h} for i, h in enumerate([30, 55, 80, 42, 97, 64, 12, 70])]
    with override_settings(TEMPLATES=sample_templates()):
        return render_to_string("reports/sample.html", {"report": report, "rows": rows, "bars": bars})


def compact(text: str) -> str:
    return "".join(text.split())


def write_signer(folder: Path, key, certificate: x509.Certificate) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    key_path, cert_path = folder / "report-signing.pem", folder / "report-signing.crt"
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


@pytest.fixture(scope="module")
def sample_pdf() -> bytes:
    return render_pdf(sample_html())


@pytest.fixture(scope="module")
def signer(tmp_path_factory):
    """The installation's pair as the embedded setup creates it (in a folder of this module's own)."""
    keys = tmp_path_factory.mktemp("keys")
    with override_settings(
        ASSAY_REPORT_SIGNING_KEY_FILE=str(keys / "report-signing.pem"),
        ASSAY_REPORT_CERTIFICATE_FILE=str(keys / "report-signing.crt"),
    ):
        return load_report_signer(create=True)


@pytest.fixture(scope="module")
def signed_pdf(sample_pdf, signer) -> bytes:
    return sign_pdf(sample_pdf, reason="Assay audit trail report", location="test", signer=signer)


@pytest.fixture
def published_pem(signer) -> bytes:
    return signer[1].public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def key_files(settings, tmp_path):
    """Point the key and certificate settings into this test's folder; returns (key path, certificate path)."""
    key_path, cert_path = tmp_path / "keys" / "report-signing.pem", tmp_path / "keys" / "report-signing.crt"
    settings.ASSAY_REPORT_SIGNING_KEY_FILE = str(key_path)
    settings.ASSAY_REPORT_CERTIFICATE_FILE = str(cert_path)
    return key_path, cert_path


# -- layout -------------------------------------------------------------------------------------------------


def test_report_pdf_pages_carry_the_header_row_footer_and_full_digests(sample_pdf):
    # given a report of 300 rows rendered from the shared template
    reader = PdfReader(io.BytesIO(sample_pdf))
    pages = [page.extract_text() for page in reader.pages]

    # then it runs over several A4 pages, each with the table's header row and "Page n of N"
    assert len(pages) > 1
    for number, (page, text) in enumerate(zip(reader.pages, pages, strict=True), 1):
        assert (round(float(page.mediabox.width), 1), round(float(page.mediabox.height), 1)) == A4
        assert "RecordedactionActornameEventdigest" in compact(text), f"page {number} lacks the table header"
        assert f"Page {number} of {len(pages)}" in text
    # the first page states the scope, period, who generated it and when, and the checkpoint
    first = compact(pages[0])
    for statement in [
        "AudittrailreportAudittrail·teammarketing",
        "2026-01-0100:00UTCto2026-03-3100:00UTC",
        "Generatedbycarol",
    ]:
        assert statement in first
    assert "2026-04-0209:30UTC" in first and "treesize4096" in first and ROOT_HASH in first
    # every digest is printed whole (wrapped, not cut), the last row included
    everything = compact("".join(pages))
    assert all(digest(n) in everything for n in (1, 150, ROWS))
    assert "Assayreport·generated2026-04-0209:30UTCbycarol" in compact(pages[-1])


def test_report_pdf_pages_render_as_images(sample_pdf, tmp_path):
    # given the PDF on disk
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(sample_pdf)
    if not shutil.which("pdftoppm"):
        pytest.fail("pdftoppm (poppler-utils) is needed to render the pages: scripts/services/ensure.sh installs it")

    # when poppler renders every page
    subprocess.run(["pdftoppm", "-r", "50", "-png", str(pdf), str(tmp_path / "page")], check=True, timeout=60)

    # then there is one image per page
    assert len(list(tmp_path.glob("page*.png"))) == len(PdfReader(io.BytesIO(sample_pdf)).pages)


def test_render_fetches_nothing_from_the_network():
    # given a listening socket a fetch would connect to
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.setblocking(False)
        port = server.getsockname()[1]

        # when a page referring to it is rendered
        pdf = render_pdf(f'<p>Logo: <img src="http://127.0.0.1:{port}/x.png" alt="logo"></p>')

        # then no connection was made, and the PDF is there all the same
        with pytest.raises(BlockingIOError):
            server.accept()
    assert pdf.startswith(b"%PDF-") and len(PdfReader(io.BytesIO(pdf)).pages) == 1


def test_render_reads_no_file_outside_the_static_folder(tmp_path):
    # given a stylesheet outside static/ that would change the paper size
    stylesheet = tmp_path / "outside.css"
    stylesheet.write_text("@page { size: 100mm 100mm }")

    # when a page links to it
    pdf = render_pdf(f'<link rel="stylesheet" href="{stylesheet.as_uri()}"><p>Hello</p>')

    # then it was not applied
    box = PdfReader(io.BytesIO(pdf)).pages[0].mediabox
    assert round(float(box.width)) != round(100 / 25.4 * 72)


# -- signature ----------------------------------------------------------------------------------------------


def test_signed_report_validates_with_pyhanko_and_the_offline_checker(signed_pdf, signer, published_pem):
    # when the signed report is checked against the published certificate
    status = validate_pdf(signed_pdf, certificate=signer[1])

    # then both checkers accept it
    assert status["intact"] and status["trusted"] and status["whole_file"]
    assert "Assay report signing" in status["signer"]
    assert check_pdf_signature(signed_pdf, published_pem) == []


def test_offline_checker_command_line(signed_pdf, published_pem, tmp_path):
    # given a signed report and the certificate downloaded next to it
    (tmp_path / "report.pdf").write_bytes(signed_pdf)
    (tmp_path / "report.pdf.changed").write_bytes(signed_pdf + b"%extra\n")
    (tmp_path / "report-signing.crt").write_bytes(published_pem)

    def run(name: str) -> subprocess.CompletedProcess:
        command = [sys.executable, str(CHECKER), str(tmp_path / name), str(tmp_path / "report-signing.crt")]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=tmp_path)

    # when it is checked from the command line, then good is 0 and "ok", changed is 1 naming the failure
    good, changed = run("report.pdf"), run("report.pdf.changed")
    assert good.returncode == 0 and good.stdout.startswith("ok: ")
    assert changed.returncode == 1 and "bytes after the signed revision" in changed.stdout


def test_a_changed_byte_in_the_signed_range_is_detected(signed_pdf, signer, published_pem):
    # given a signed report whose Info dictionary (inside the signed bytes) is altered by one byte
    producer = signed_pdf.index(b"WeasyPrint", signed_pdf.index(b"/Producer"))
    assert producer < signed_pdf.index(b"/ByteRange")
    tampered = signed_pdf[:producer] + b"X" + signed_pdf[producer + 1 :]

    # then pyHanko finds it not intact and the offline checker names the digest mismatch
    assert validate_pdf(tampered, certificate=signer[1])["intact"] is False
    assert check_pdf_signature(tampered, published_pem) == [
        "document digest does not match the signed digest (the signed bytes were changed)"
    ]


def test_an_update_after_signing_is_detected(signed_pdf, signer, published_pem):
    # given a signed report with an incremental update appended (a new title), as an editor would save it
    writer = IncrementalPdfFileWriter(io.BytesIO(signed_pdf), strict=False)
    writer.set_info(generic.DictionaryObject({generic.NameObject("/Title"): pdf_string("Edited after signing")}))
    writer.root["/Lang"] = pdf_string("de")
    writer.update_root()
    out = io.BytesIO()
    writer.write(out)
    updated = out.getvalue()
    assert len(updated) > len(signed_pdf)

    # then the signature no longer covers the whole file
    assert validate_pdf(updated, certificate=signer[1])["whole_file"] is False
    assert check_pdf_signature(updated, published_pem) == [
        f"signature does not cover the whole file ({len(updated) - len(signed_pdf)} bytes after the signed revision)"
    ]


def test_a_different_certificate_is_named(signed_pdf, key_files):
    # given another installation's freshly made certificate
    _, other = load_report_signer(create=True)

    # then the report does not check against it
    other_pem = other.public_bytes(serialization.Encoding.PEM)
    assert check_pdf_signature(signed_pdf, other_pem) == ["signed by a different certificate"]
    assert validate_pdf(signed_pdf, certificate=other)["trusted"] is False


def test_a_changed_signature_value_does_not_verify(signed_pdf, published_pem):
    # given a report whose signature value (inside /Contents) has one hex digit changed
    checker = checker_module()
    start = signed_pdf.rindex(b"/Contents <") + len(b"/Contents <")
    cms = bytes.fromhex(signed_pdf[start : signed_pdf.index(b">", start)].decode())
    value = checker.read_signer_info(checker.Der(cms).raw)["signature"].hex().upper().encode()
    at = signed_pdf.index(value, start) + len(value) // 2
    flipped = signed_pdf[:at] + (b"0" if signed_pdf[at : at + 1] != b"0" else b"1") + signed_pdf[at + 1 :]

    # then the offline checker says it does not verify
    assert check_pdf_signature(flipped, published_pem) == ["signature does not verify with the published certificate"]


def test_an_unsigned_pdf_has_no_signature(sample_pdf, published_pem):
    assert check_pdf_signature(sample_pdf, published_pem) == ["no signature"]


def test_sign_uses_the_installation_pair_and_a_ca_issued_rsa_pair_works(key_files, sample_pdf):
    # given an operator's CA-issued RSA key and certificate installed in place of the generated pair
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Example CA")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "reports.example.com")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    write_signer(key_files[0].parent, key, certificate)

    # when a report is signed with the installation's pair (no signer passed)
    signed = sign_pdf(sample_pdf, reason="Assay report")

    # then the offline checker accepts it against that certificate
    assert check_pdf_signature(signed, certificate_pem()) == []


# -- key and certificate files ------------------------------------------------------------------------------


def test_the_embedded_setup_creates_a_private_key_and_reuses_it(key_files):
    key_path, cert_path = key_files

    # when the pair is loaded twice, creating it the first time
    key, certificate = load_report_signer(create=True)
    again_key, again_certificate = load_report_signer()

    # then the key file is private, and the second load gives the same pair
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert again_certificate == certificate
    assert again_key.private_numbers() == key.private_numbers()
    assert "Assay report signing" in certificate.subject.rfc4514_string()
    assert certificate_pem() == cert_path.read_bytes()
    assert certificate_fingerprint() == hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def test_a_mismatched_pair_is_refused_without_showing_the_key(key_files, tmp_path):
    # given a key from one pair and the certificate of another
    key_path, cert_path = key_files
    load_report_signer(create=True)
    with override_settings(
        ASSAY_REPORT_SIGNING_KEY_FILE=str(tmp_path / "other" / "k.pem"),
        ASSAY_REPORT_CERTIFICATE_FILE=str(tmp_path / "other" / "c.crt"),
    ):
        load_report_signer(create=True)
    shutil.copy(tmp_path / "other" / "c.crt", cert_path)

    # then loading fails, naming the files and settings, not the key
    with pytest.raises(ReportSignerMissing) as raised:
        load_report_signer(create=True)
    message = str(raised.value)
    assert str(cert_path) in message and "ASSAY_REPORT_SIGNING_KEY_FILE" in message
    assert "BEGIN" not in message and key_path.read_text().splitlines()[1] not in message


def test_a_missing_certificate_or_a_wrong_key_type_is_named(key_files):
    key_path, cert_path = key_files

    # given only a key
    load_report_signer(create=True)
    cert_path.unlink()
    with pytest.raises(ReportSignerMissing, match="ASSAY_REPORT_CERTIFICATE_FILE"):
        load_report_signer()

    # given an Ed25519 key
    key_path.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with pytest.raises(ReportSignerMissing, match="wrong type") as raised:
        load_report_signer()
    assert str(key_path) in str(raised.value)


def test_nothing_is_created_unless_asked(key_files):
    with pytest.raises(ReportSignerMissing, match="ASSAY_REPORT_SIGNING_KEY_FILE"):
        load_report_signer()
    assert not key_files[0].exists() and not key_files[1].exists()
