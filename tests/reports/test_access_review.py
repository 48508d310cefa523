"""The periodic access review: every grant attested or revoked by a reviewer, audited, reported and packed.

SOX and PCI-DSS ask for it; what a reviewer relies on: the review shows every grant with who granted it and
when it was last used, a revocation takes the access away at once, nobody decides on their own access, and the
report and its evidence pack prove who decided what.
"""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from pypdf import PdfReader

from apps.audit import checkpoints
from apps.audit.models import AuditEvent
from apps.rbac import services as rbac
from apps.rbac.models import RoleBinding
from apps.reports.models import AccessReview, Report
from worker.runner import run_job

SCRIPT = Path(django_settings.BASE_DIR) / "scripts" / "verify_pack.py"
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def people(make_user, team):
    return {
        "officer": make_user("compliance_officer", username="cleo"),
        "auditor": make_user("auditor", username="erin"),
        "viewer": make_user("viewer", username="val", team=team),
        "dev": make_user("contributor", username="dev", team=team),
    }


def test_a_reviewer_attests_and_revokes_every_grant_and_exports_the_signed_review(people, api_client_for, keys_ready):
    client = api_client_for(people["officer"])
    # when the officer starts a review of every grant
    response = client.post("/api/v1/access-reviews/", {"title": "Q4 access review"})
    assert response.status_code == 201, response.content
    review = response.json()
    items = {i["subject"]: i for i in review["items"]}
    assert len(items) == RoleBinding.objects.count() and "user dev" in items
    assert all(i["decision"] == "pending" and i["granted_at"] for i in items.values())
    url = f"/api/v1/access-reviews/{review['id']}"
    # then nobody reviews their own access, a revocation needs a reason, and closing waits for every grant
    own = client.post(f"{url}/items/{items['user cleo']['id']}/", {"decision": "attest"})
    assert own.status_code == 409 and own.json()["code"] == "own_grant"
    assert client.post(f"{url}/items/{items['user dev']['id']}/", {"decision": "revoke"}).status_code == 400
    assert client.post(f"{url}/close/").status_code == 409
    # when dev's grant is revoked, it is gone at once
    revoked = client.post(f"{url}/items/{items['user dev']['id']}/", {"decision": "revoke", "reason": "left the team"})
    assert revoked.status_code == 200 and revoked.json()["decision"] == "revoked"
    assert not RoleBinding.objects.filter(user=people["dev"]).exists()
    assert AuditEvent.objects.filter(action="role_binding.deleted", actor_name="cleo").exists()
    # and a second reviewer decides on the first one's own grant; everyone else is attested
    second = api_client_for(rbac_officer("cora"))
    assert second.post(f"{url}/items/{items['user cleo']['id']}/", {"decision": "attest"}).status_code == 200
    for subject, item in items.items():
        if subject not in ("user dev", "user cleo"):
            assert client.post(f"{url}/items/{item['id']}/", {"decision": "attest"}).status_code == 200, subject
    closed = client.post(f"{url}/close/")
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    # when the signed report and pack are exported
    response = client.post("/api/v1/reports/", {"kind": "access_review", "review": review["id"]}, format="json")
    assert response.status_code == 202, response.content
    report = Report.objects.get(public_id=response.json()["id"])
    assert run_job(report.job_id) == "succeeded"
    pdf = _download(client, report, "pdf")
    text = " ".join(" ".join((p.extract_text() or "") for p in PdfReader(io.BytesIO(pdf)).pages).split())
    assert "left the team" in text, text and "user dev" in text and "revoked" in text and "attested" in text
    pack = _download(client, report, "pack")
    with zipfile.ZipFile(io.BytesIO(pack)) as z:
        actions = [line.split('"action":"')[1].split('"')[0] for line in z.read("events.jsonl").decode().splitlines()]
    assert actions[0] == "access_review.started" and actions[-1] == "access_review.closed"
    assert actions.count("access_review.revoked") == 1 and "access_review.attested" in actions
    (keys_ready / "review.zip").write_bytes(pack)
    key = keys_ready / "audit-log.pem"
    key.write_text(checkpoints.public_pem(checkpoints.load_signing_key().public_key()))
    result = subprocess.run(
        [sys.executable, "-I", str(SCRIPT), str(keys_ready / "review.zip"), "--key", str(key)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def rbac_officer(username: str):
    from apps.core.principals import Principal
    from tests.factories.accounts import UserFactory

    user = UserFactory(username=username)
    rbac.role_grant(actor=Principal.system("tests"), subject=user, role="compliance_officer")
    return user


def _download(client, report, fmt: str) -> bytes:
    link = client.post(f"/api/v1/reports/{report.public_id}/download/{fmt}/")
    assert link.status_code == 303
    return b"".join(client.get(link["Location"]).streaming_content)


@pytest.fixture
def keys_ready(tmp_path):
    from apps.reports.certificate import load_report_signer

    checkpoints.load_signing_key(create=True)
    load_report_signer(create=True)
    return tmp_path


def test_only_reviewers_start_and_decide_and_auditors_read(people, api_client_for, team):
    assert api_client_for(people["viewer"]).post("/api/v1/access-reviews/", {}).status_code == 403
    assert api_client_for(people["auditor"]).post("/api/v1/access-reviews/", {}).status_code == 403
    review = api_client_for(people["officer"]).post("/api/v1/access-reviews/", {"team": team.name}).json()
    # a team's review holds the grants on that team only
    assert {i["subject"] for i in review["items"]} == {"user val", "user dev"}
    auditor = api_client_for(people["auditor"])
    assert auditor.get(f"/api/v1/access-reviews/{review['id']}/").status_code == 200
    item = review["items"][0]["id"]
    decided = auditor.post(f"/api/v1/access-reviews/{review['id']}/items/{item}/", {"decision": "attest"})
    assert decided.status_code == 403
    assert api_client_for(people["dev"]).get("/api/v1/access-reviews/").status_code == 403
    assert AccessReview.objects.count() == 1
    denied = set(AuditEvent.objects.filter(outcome="denied").values_list("actor_name", "action"))
    assert ("erin", "access_review.attested") in denied and ("val", "access_review.started") in denied


def test_an_auditor_exports_an_audit_trail_extract_whose_pack_holds_exactly_the_filtered_events(
    people, api_client_for, keys_ready, client
):
    auditor = api_client_for(people["auditor"])
    # a few events of two kinds: a review started (access_review.*) and denials
    api_client_for(people["officer"]).post("/api/v1/access-reviews/", {"title": "Q1"})
    api_client_for(people["viewer"]).post("/api/v1/access-reviews/", {})
    body = {"kind": "trail", "filters": {"action": "access_review.*"}, "formats": ["pdf", "pack"]}
    response = auditor.post("/api/v1/reports/", body, format="json")
    assert response.status_code == 202, response.content
    report = Report.objects.get(public_id=response.json()["id"])
    assert report.filters == {"action": "access_review.*"}
    assert run_job(report.job_id) == "succeeded"
    report.refresh_from_db()
    expected = AuditEvent.objects.filter(action__startswith="access_review.", seq__lte=report.checkpoint_size)
    assert report.events == expected.count() >= 2
    pack = _download(auditor, report, "pack")
    with zipfile.ZipFile(io.BytesIO(pack)) as z:
        lines = z.read("events.jsonl").decode().splitlines()
    assert len(lines) == report.events and all('"action":"access_review.' in line for line in lines)
    (keys_ready / "trail.zip").write_bytes(pack)
    key = keys_ready / "audit-log.pem"
    key.write_text(checkpoints.public_pem(checkpoints.load_signing_key().public_key()))
    result = subprocess.run(
        [sys.executable, "-I", str(SCRIPT), str(keys_ready / "trail.zip"), "--key", str(key)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # a filter that cannot be read is a 400 naming it; a team's viewer may not export the trail
    bad = auditor.post("/api/v1/reports/", {"kind": "trail", "filters": {"since": "soon"}}, format="json")
    assert bad.status_code == 400 and "since" in bad.json()["errors"]
    refused = api_client_for(people["viewer"]).post("/api/v1/reports/", {"kind": "trail"}, format="json")
    assert refused.status_code == 403
    # and the audit page offers the export for its filter
    client.force_login(people["officer"])
    page = client.get("/audit/?action=access_review.*")
    assert b'id="export-pack"' in page.content and b'value="access_review.*"' in page.content
