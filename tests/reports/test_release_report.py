# ruff: noqa: F811 - pytest fixtures imported from other modules are parameters here
"""A compliance officer exports a release's report and evidence pack; an auditor checks them offline.

Everything is real: the release and its evidence, the worker's job (run here as a worker runs it),
WeasyPrint and pyHanko, storage, the download links, and ``scripts/verify_pack.py`` run as a command.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.conf import settings as django_settings
from pypdf import PdfReader

from apps.accounts.principals import principal_for_user
from apps.audit import checkpoints
from apps.audit.models import AuditEvent
from apps.reports import services
from apps.reports.certificate import certificate_pem
from apps.reports.models import Report
from tests.releases.conftest import (  # noqa: F401 - fixtures shared with the release tests
    author,
    decided,
    manager,
    model,
    officer,
    production,
    request_release,
    requester,
    reviewer,
    staging,
)
from tests.reports.conftest import approved  # noqa: F401 - an approved release with real evidence
from worker.runner import run_job

SCRIPT = Path(django_settings.BASE_DIR) / "scripts" / "verify_pack.py"
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def keys(settings, tmp_path):
    """The audit signing key and the report certificate in this test's folder, created as the run command does."""
    settings.ASSAY_AUDIT_SIGNING_KEY_FILE = str(tmp_path / "audit.pem")
    settings.ASSAY_AUDIT_SIGNING_KEY = ""
    settings.ASSAY_CHECKPOINT_URL = (tmp_path / "checkpoints").as_uri()
    settings.ASSAY_REPORT_SIGNING_KEY_FILE = str(tmp_path / "report.pem")
    settings.ASSAY_REPORT_CERTIFICATE_FILE = str(tmp_path / "report.crt")
    checkpoints.load_signing_key(create=True)
    from apps.reports.certificate import load_report_signer

    load_report_signer(create=True)
    return tmp_path


def _generate(actor, release, formats=None) -> Report:
    report = services.report_request(actor=actor, kind="release", release_id=release.public_id, formats=formats)
    assert run_job(report.job_id) == "succeeded"
    report.refresh_from_db()
    return report


def _download(client, report: Report, fmt: str) -> bytes:
    link = client.post(f"/api/v1/reports/{report.public_id}/download/{fmt}/")
    assert link.status_code == 303, link.content
    response = client.get(link["Location"])
    assert response.status_code == 200
    return b"".join(response.streaming_content)


def test_an_officer_exports_a_release_report_and_an_auditor_verifies_the_pack_offline(
    approved, officer, make_user, api_client_for, keys
):
    # when the compliance officer asks for the report and the pack over the API
    client = api_client_for(officer)
    response = client.post(
        "/api/v1/reports/", {"kind": "release", "release": str(approved.public_id), "formats": ["pdf", "pack"]}
    )
    assert response.status_code == 202, response.content
    body = response.json()
    assert response["Location"].endswith(f"/api/v1/reports/{body['id']}/") and body["status"] == "queued"
    report = Report.objects.get(public_id=body["id"])
    assert run_job(report.job_id) == "succeeded"

    # then the report is ready, built against a signed checkpoint, with both files
    detail = client.get(f"/api/v1/reports/{body['id']}/").json()
    assert detail["status"] == "succeeded" and detail["progress"] == 100
    assert {f["format"] for f in detail["files"]} == {"pdf", "pack"}
    assert detail["checkpoint"]["tree_size"] > 0 and detail["events"] > 0

    # the PDF names the scope, prints every digest whole, each rule and each approver
    pdf = _download(client, report, "pdf")
    text = "".join((page.extract_text() or "") for page in PdfReader(io.BytesIO(pdf)).pages)
    flat = "".join(text.split())
    version = approved.version
    assert approved.model.name in text and f"release:{approved.public_id}" in flat
    assert version.sha256 in flat and approved.binding_digest in flat
    assert detail["checkpoint"]["root"] in flat
    for rule in approved.decision["rules"]:
        assert rule["rule"] in flat, rule["rule"]
    for pack in approved.decision["packs"]:
        assert pack["sha256"] in flat
    assert "rita" in text  # the approver
    # and every page renders (poppler's pdftoppm, as a reader would display it)
    assert shutil.which("pdftoppm"), "pdftoppm (poppler-utils): scripts/services/ensure.sh installs it"
    (keys / "report.pdf").write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-r", "40", "-png", str(keys / "report.pdf"), str(keys / "page")], check=True, timeout=120
    )
    assert len(list(keys.glob("page*.png"))) == len(PdfReader(io.BytesIO(pdf)).pages) > 1

    # and the pack verifies with nothing but the published key and certificate
    pack = _download(client, report, "pack")
    (keys / "pack.zip").write_bytes(pack)
    (keys / "audit-log.pem").write_text(checkpoints.public_pem(checkpoints.load_signing_key().public_key()))
    (keys / "report.crt").write_bytes(certificate_pem())
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            str(SCRIPT),
            str(keys / "pack.zip"),
            "--key",
            str(keys / "audit-log.pem"),
            "--certificate",
            str(keys / "report.crt"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    with zipfile.ZipFile(io.BytesIO(pack)) as z:
        names = set(z.namelist())
        assert {
            "report.pdf",
            "events.jsonl",
            "proofs.jsonl",
            "checkpoint.json",
            "records/policy/decision.json",
        } <= names
        assert any(n.startswith("records/policy/packs/") for n in names)
        events = z.read("events.jsonl").decode().splitlines()
    assert len(events) == detail["events"]

    # every step is on the trail: asked for, generated, each download
    actions = list(
        AuditEvent.objects.filter(target_type="report", target_id=body["id"])
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["report.requested", "report.generated", "report.downloaded", "report.downloaded"]


def test_a_release_manager_reports_on_releases_in_scope_and_a_viewer_may_not(
    approved, manager, make_user, api_client_for, team, other_team
):
    viewer = make_user("viewer", username="val", team=team)
    outsider = make_user("release_manager", username="otto", team=other_team)  # another team's
    body = {"kind": "release", "release": str(approved.public_id)}
    assert api_client_for(manager).post("/api/v1/reports/", body).status_code == 202
    assert api_client_for(viewer).post("/api/v1/reports/", body).status_code == 403
    assert api_client_for(outsider).post("/api/v1/reports/", body).status_code == 404
    denied = AuditEvent.objects.filter(outcome="denied").values_list("actor_name", "action")
    assert set(denied) >= {("val", "report.requested"), ("otto", "releases.denied")}
    assert Report.objects.count() == 1


def test_bad_requests_name_what_is_wrong_and_create_nothing(approved, officer, api_client_for):
    client = api_client_for(officer)
    for body, field in (
        ({"release": str(approved.public_id)}, "kind"),
        ({"kind": "quarterly", "release": str(approved.public_id)}, "kind"),
        ({"kind": "release"}, "release"),
        ({"kind": "release", "release": str(approved.public_id), "formats": ["docx"]}, "formats"),
    ):
        response = client.post("/api/v1/reports/", body, format="json")
        assert response.status_code == 400, (body, response.content)
        assert field in str(response.json()), body
    assert client.post("/api/v1/reports/", {"kind": "release", "release": "not-an-id"}).status_code == 404
    assert not Report.objects.exists()


def test_without_a_report_certificate_the_report_fails_saying_so(approved, officer, settings, keys):
    settings.ASSAY_REPORT_CERTIFICATE_FILE = str(keys / "missing.crt")
    report = _generate(principal_for_user(officer), approved, formats=["html", "pdf"])
    assert report.status == "failed"
    assert "missing.crt" in report.error and "BEGIN" not in report.error
    # and the HTML page stored before the signing failed is not left behind
    storage = Path(urlparse(settings.ASSAY_STORAGE_URL).path)
    assert not list((storage / "reports").glob("*")) and report.files == {}
    assert AuditEvent.objects.filter(action="report.failed", target_id=str(report.public_id)).exists()


def test_the_dashboard_buttons_export_and_the_report_page_offers_the_files(approved, officer, client):
    client.force_login(officer)
    page = client.get(f"/releases/{approved.public_id}/")
    assert b'id="export-pack"' in page.content and b'id="export-report"' in page.content
    response = client.post(f"/releases/{approved.public_id}/report/", {"formats": ["pdf", "html"]})
    assert response.status_code == 302
    report = Report.objects.get()
    assert response["Location"] == f"/reports/{report.public_id}/"
    assert run_job(report.job_id) == "succeeded"
    page = client.get(response["Location"])
    assert b'id="download-pdf"' in page.content and b'id="download-html"' in page.content
    download = client.post(f"/reports/{report.public_id}/download/html/")
    assert download.status_code == 303
    html = b"".join(client.get(download["Location"]).streaming_content).decode()
    # the HTML page is the PDF's source: the bias verdicts drawn as an inline SVG chart beside their table
    assert '<svg viewBox="0 0 640' in html and "Measured disparity per group" in html
    listing = client.get("/reports/")
    assert report.title.encode() in listing.content


def _pdf_text(client, report: Report) -> str:
    return "".join((p.extract_text() or "") for p in PdfReader(io.BytesIO(_download(client, report, "pdf"))).pages)


def test_a_model_report_lays_out_annex_iv_and_article_30_and_says_what_a_person_must_write(
    approved, officer, api_client_for, keys
):
    # given a high-risk model processing personal data, with an approved release
    model = approved.model
    model.risk_tier = "high"
    model.save(update_fields=["risk_tier"])
    client = api_client_for(officer)
    # when the officer asks for its report
    response = client.post("/api/v1/reports/", {"kind": "model", "model": model.name, "formats": ["pdf", "pack"]})
    assert response.status_code == 202, response.content
    report = Report.objects.get(public_id=response.json()["id"])
    assert run_job(report.job_id) == "succeeded"
    report.refresh_from_db()
    # then the PDF holds the versions, the release and both regulation outlines, each section marked
    text = _pdf_text(client, report)
    flat = "".join(text.split())
    assert "Annex IV" in text and "Art. 30" in text
    assert "apersonwritesit" in flat and "filledbyAssay" in flat and "partlyfilled" in flat
    assert approved.version.sha256 in flat and "DPIA-2025-001" in text
    # and its pack verifies, scoped to the model's story
    (keys / "model.zip").write_bytes(_download(client, report, "pack"))
    (keys / "audit-log.pem").write_text(checkpoints.public_pem(checkpoints.load_signing_key().public_key()))
    result = subprocess.run(
        [sys.executable, "-I", str(SCRIPT), str(keys / "model.zip"), "--key", str(keys / "audit-log.pem")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_period_report_lists_refusals_break_glass_role_changes_and_denied_attempts(
    approved, officer, manager, make_user, api_client_for, team, keys
):
    from apps.releases import services as releases

    # given, in the period: a refused attempt, a role change and a break-glass release
    viewer = make_user("viewer", username="val", team=team)
    assert api_client_for(viewer).post("/api/v1/reports/", {"kind": "release", "release": str(approved.public_id)})
    emergency = releases.release_request_create(
        actor=principal_for_user(manager),
        model_name=approved.model.name,
        number=approved.version.number,
        environment="production",
        justification="outage",
        change_reference="CHG-7",
        emergency=True,
    )
    client = api_client_for(officer)
    # when the officer asks for every team's report over the period, with its pack
    body = {"kind": "period", "since": "2020-01-01", "until": "2099-12-31", "formats": ["pdf", "pack"]}
    response = client.post("/api/v1/reports/", body, format="json")
    assert response.status_code == 202, response.content
    report = Report.objects.get(public_id=response.json()["id"])
    assert run_job(report.job_id) == "succeeded"
    report.refresh_from_db()
    text = _pdf_text(client, report)
    flat = "".join(text.split())
    # then it shows the break-glass release in the SOX log, the role changes and the denial
    assert "CHG-7" in text and str(emergency.public_id) in flat
    assert "SOXchange-managementlog" in flat
    assert "Role changes" in text and "Denied attempts" in text and "val" in text
    # and the pack holds every event of the period, each with its proof
    with zipfile.ZipFile(io.BytesIO(_download(client, report, "pack"))) as z:
        assert len(z.read("events.jsonl").decode().splitlines()) == report.events


def test_who_may_ask_for_model_and_period_reports(approved, manager, officer, make_user, api_client_for, team):
    model = approved.model.name
    assert api_client_for(manager).post("/api/v1/reports/", {"kind": "model", "model": model}).status_code == 403
    team_officer = make_user("compliance_officer", username="tess", team=team)
    client = api_client_for(team_officer)
    period = {"kind": "period", "since": "2026-01-01", "until": "2026-02-01"}
    # a team's officer: a report on their team's period, not on every team's
    assert client.post("/api/v1/reports/", {**period, "team": team.name, "formats": ["pdf"]}).status_code == 202
    assert client.post("/api/v1/reports/", {**period, "formats": ["pdf"]}).status_code == 403
    # and a team's period comes with a pack of the events about the team
    packed = client.post("/api/v1/reports/", {**period, "team": team.name, "formats": ["pack"]}, format="json")
    assert packed.status_code == 202
    team_report = Report.objects.get(public_id=packed.json()["id"])
    assert team_report.subject == f"team:{team.name}"
    assert run_job(team_report.job_id) == "succeeded"
    missing = api_client_for(officer).post("/api/v1/reports/", {"kind": "period", "since": "2026-01-01"})
    assert missing.status_code == 400 and "until" in missing.json()["errors"]
