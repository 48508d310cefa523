"""Cancelling runs, and their result files: who may, what a worker then does, what the trail records."""

from __future__ import annotations

import pytest

from apps.core.storage import get_storage
from apps.evidence import services
from apps.evidence.models import EvidenceFile, EvidenceRun
from apps.jobs import services as jobs
from apps.jobs.models import JobStatus
from tests.evidence.conftest import read_download

pytestmark = pytest.mark.django_db

VERSION_URL = "/api/v1/models/churn/versions/1/evidence/"


@pytest.fixture
def cora(api_client_for, contributor):
    return api_client_for(contributor)


@pytest.fixture
def queued(cora, version) -> EvidenceRun:
    response = cora.post(VERSION_URL, {"kind": "bias"}, format="json")
    assert response.status_code == 202, response.content
    return EvidenceRun.objects.get(public_id=response.json()["id"])


def _cancel_url(run: EvidenceRun) -> str:
    return f"/api/v1/evidence/{run.public_id}/cancel/"


# ---------------------------------------------------------------------------------------------
# Cancelling


def test_a_queued_run_is_cancelled_and_a_worker_then_leaves_it_alone(cora, queued, run, audit_mark):
    # given a queued bias run
    mark = audit_mark()
    # when its requester cancels it
    response = cora.post(_cancel_url(queued))
    # then the run and its job are cancelled, and both changes are audited
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"
    queued.refresh_from_db()
    queued.job.refresh_from_db()
    assert queued.status == "cancelled" and queued.finished_at is not None
    assert queued.job.status == JobStatus.CANCELLED
    assert mark.actions() == ["job.cancelled", "evidence_run.cancelled"]
    # and a worker that receives the job's message does nothing
    assert run(queued.job_id) == "skipped"
    queued.refresh_from_db()
    assert queued.status == "cancelled" and queued.summary is None


def test_a_running_run_stops_at_its_next_progress_report(cora, queued, run):
    # given a worker that has claimed the run's job and started it
    claim = jobs.job_claim(queued.job_id)
    assert claim is not None
    # when the run is cancelled while the worker computes
    assert cora.post(_cancel_url(queued)).status_code == 200
    # then the worker's next progress report is refused, which stops its handler
    assert jobs.job_report(claim, progress=50, message="counting") is False
    # and its late finish is ignored: the run stays cancelled
    assert jobs.job_finish(claim, ok=True) is False
    queued.refresh_from_db()
    assert queued.status == "cancelled"


def test_a_finished_run_cannot_be_cancelled(cora, queued, run, audit_mark):
    assert run(queued.job_id) == "succeeded"
    mark = audit_mark()
    response = cora.post(_cancel_url(queued))
    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    assert "only a queued or running run" in response.json()["detail"]
    assert mark.actions() == []


def test_cancelling_needs_the_right_to_request_evidence(anon_client, make_user, api_client_for, team, queued):
    # anonymous: 401; no role: the run does not exist for them (404); a viewer sees it but may not (403)
    assert anon_client.post(_cancel_url(queued)).status_code == 401
    assert api_client_for(make_user()).post(_cancel_url(queued)).status_code == 404
    viewer = api_client_for(make_user("viewer", team=team))
    response = viewer.post(_cancel_url(queued))
    assert response.status_code == 403
    queued.refresh_from_db()
    assert queued.status == "queued"
    from apps.audit.models import AuditEvent

    assert AuditEvent.objects.filter(action="evidence_run.cancelled", outcome="denied").count() == 2


def test_cancel_from_the_run_page(client, contributor, queued):
    client.force_login(contributor)
    page = client.get(f"/evidence/{queued.public_id}/")
    assert b"Cancel this run" in page.content
    response = client.post(f"/evidence/{queued.public_id}/cancel/", follow=True)
    assert response.status_code == 200
    assert b"The run was cancelled." in response.content
    queued.refresh_from_db()
    assert queued.status == "cancelled"


# ---------------------------------------------------------------------------------------------
# Result files


def test_a_finished_bias_run_offers_its_per_group_table_for_download(cora, queued, run, audit_mark):
    # given a bias run that a worker finished
    assert run(queued.job_id) == "succeeded"
    body = cora.get(f"/api/v1/evidence/{queued.public_id}/").json()
    # then it lists its result file with size and digest
    [listed] = body["files"]
    assert listed["name"] == "group_metrics.csv" and listed["content_type"] == "text/csv"
    stored = EvidenceFile.objects.get(run=queued)
    assert (listed["size"], listed["sha256"]) == (stored.size, stored.sha256)
    # when it is downloaded
    mark = audit_mark()
    response = cora.get(listed["url"])
    # then the table holds a row per group, with the summary's numbers
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="group_metrics.csv"')
    preamble, rows = read_download(b"".join(response.streaming_content))
    queued.refresh_from_db()
    # and its preamble says which model, version, run and bytes it comes from
    assert preamble["run"] == str(queued.public_id) and preamble["kind"] == "bias"
    assert (preamble["model"], preamble["version"]) == (queued.version.model.name, str(queued.version.number))
    assert preamble["dataset sha256"] == queued.input_digests["dataset"] == queued.dataset.sha256
    assert preamble["artifact sha256"] == queued.version.sha256 and preamble["summary schema"] == "assay.bias/v1"
    women = next(g for g in queued.summary["by_column"]["sex"]["groups"] if g["label"] == "F")
    row = next(r for r in rows if r["grouping"] == "sex" and r["group"] == women["name"])
    assert int(row["count"]) == women["count"]
    assert float(row["selection_rate"]) == pytest.approx(women["selection_rate"], abs=1e-12)
    assert {r["grouping"] for r in rows} == {"sex", "region", "sex x region"}
    # and the download is in the audit trail, with the file's digest
    [event] = mark.new()
    assert event.action == "evidence_file.downloaded" and event.artifact_sha256 == stored.sha256


def test_a_result_file_is_not_found_outside_the_runs_scope(make_user, api_client_for, queued, run):
    assert run(queued.job_id) == "succeeded"
    url = f"/api/v1/evidence/{queued.public_id}/files/group_metrics.csv/"
    assert api_client_for(make_user()).get(url).status_code == 404
    assert api_client_for(make_user("viewer", team=queued.owner_team)).get(url).status_code == 200


def test_an_unknown_file_name_is_404_and_never_reaches_the_filesystem(cora, queued, run):
    assert run(queued.job_id) == "succeeded"
    for name in ("nothing.csv", "..%2F..%2Fetc%2Fpasswd", "group_metrics.csv%00"):
        response = cora.get(f"/api/v1/evidence/{queued.public_id}/files/{name}/")
        assert response.status_code == 404, name


def test_a_run_cancelled_just_before_it_records_its_summary_leaves_no_files(contributor_principal, queued):
    """The worker's handler, given the runner's progress callback; the cancel lands after the files are stored."""
    from worker.tasks.evidence import run_evidence

    # given a worker computing the run, and a cancel that arrives as it records the summary
    def report(progress: int, message: str = "") -> None:
        if progress >= 95:
            services.evidence_run_cancel(actor=contributor_principal, run_id=queued.public_id)

    # when the handler finishes
    result = run_evidence(queued.job, report)
    # then nothing of its result is kept: no summary, no file rows, no stored bytes
    assert "cancelled" in result["skipped"]
    queued.refresh_from_db()
    assert queued.status == "cancelled" and queued.summary is None
    assert EvidenceFile.objects.filter(run=queued).count() == 0
    folder = get_storage().root / "evidence"
    assert not folder.exists() or not any(folder.iterdir())


def test_the_run_page_links_its_downloads_and_the_download_is_audited(client, contributor, queued, run, audit_mark):
    assert run(queued.job_id) == "succeeded"
    client.force_login(contributor)
    page = client.get(f"/evidence/{queued.public_id}/")
    assert b"group_metrics.csv" in page.content
    mark = audit_mark()
    response = client.get(f"/evidence/{queued.public_id}/files/group_metrics.csv")
    assert response.status_code == 200 and response["Content-Type"] == "text/csv"
    assert mark.actions() == ["evidence_file.downloaded"]
