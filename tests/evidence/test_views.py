"""The dashboard's evidence: a version page offers the bias report, and the run's page shows it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.evidence.models import EvidenceRun
from apps.jobs import services as jobs
from apps.jobs.models import Job, WorkerHeartbeat

pytestmark = pytest.mark.django_db


@pytest.fixture
def web(client, contributor):
    client.force_login(contributor)
    return client


def test_a_contributor_asks_for_a_bias_report_and_reads_it_once_the_worker_ran(web, version, run, audit_mark):
    # given: the version's page offers the report, and a worker is alive
    jobs.worker_heartbeat(name="host:1", kind="database", beat=False, started_at=timezone.now())
    page = web.get("/models/churn/versions/1/").content.decode()
    assert "Request bias report" in page and "No evidence yet." in page
    mark = audit_mark()
    # when: she asks for it
    response = web.post("/models/churn/versions/1/evidence/bias/")
    # then: she lands on the run's page, which follows the queued run
    evidence = EvidenceRun.objects.get(version=version, kind="bias")
    assert response.status_code == 302 and response["Location"] == f"/evidence/{evidence.public_id}/"
    assert mark.actions() == ["evidence_run.requested"]
    waiting = web.get(response["Location"]).content.decode()
    assert 'http-equiv="refresh"' in waiting and "Queued" in waiting
    # when: a worker runs it
    assert run(Job.objects.get(pk=evidence.job_id).pk) == "succeeded"
    # then: the page shows the disparities and each group, marking the extremes, and stops refreshing
    report = web.get(response["Location"]).content.decode()
    assert 'http-equiv="refresh"' not in report and "Succeeded" in report
    evidence.refresh_from_db()
    dpd = evidence.summary["by_column"]["sex"]["disparities"]["demographic_parity_difference"]["value"]
    assert "Demographic parity difference" in report and f"{dpd:.4f}" in report
    assert "By sex" in report and "By region" in report and "By sex × region" in report
    assert "highest selection" in report and "lowest selection" in report
    # and the version's page lists the run
    listed = web.get("/models/churn/versions/1/").content.decode()
    assert f"/evidence/{evidence.public_id}/" in listed and "Bias report" in listed


def test_a_failed_run_says_why_in_words(web, make_dataset, contributor_principal, model, run):
    from apps.registry import services as registry
    from tests.evidence.conftest import scored_rows
    from tests.registry.fixtures import job_of

    dataset = make_dataset(scored_rows(labels=("no", "yes")), name="text-labels")
    version = registry.version_create(
        actor=contributor_principal, model_name="churn", format="predictions_only", evaluation_dataset_id=dataset.pk
    )
    run(job_of(version).pk)
    response = web.post(f"/models/churn/versions/{version.number}/evidence/bias/")
    evidence = EvidenceRun.objects.get(version=version)
    run(evidence.job_id)
    page = web.get(response["Location"]).content.decode()
    assert "The run failed." in page and "positive" in page and "Traceback" not in page


def test_a_viewer_sees_the_reports_but_no_button_and_cannot_ask(client, make_user, team, version, audit_mark):
    viewer = make_user("viewer", team=team)
    client.force_login(viewer)
    page = client.get("/models/churn/versions/1/").content.decode()
    assert "Request bias report" not in page
    mark = audit_mark()
    response = client.post("/models/churn/versions/1/evidence/bias/")
    assert response.status_code == 403
    assert mark.actions(outcome="denied") == ["evidence_run.requested"]
    assert not EvidenceRun.objects.exists()


def test_someone_outside_the_team_gets_a_404_for_a_run(client, make_user, other_team, version, contributor_principal):
    from apps.evidence import services

    evidence = services.evidence_request(actor=contributor_principal, kind="bias", version=version).run
    client.force_login(make_user("viewer", team=other_team))
    assert client.get(f"/evidence/{evidence.public_id}/").status_code == 404


def test_a_queued_run_says_it_waits_for_a_worker_when_none_is_alive(web, version):
    # given: no worker has been seen for 30 s
    jobs.worker_heartbeat(name="host:1", kind="database", beat=False, started_at=timezone.now())
    WorkerHeartbeat.objects.update(last_seen=timezone.now() - timedelta(seconds=31))
    # when: she asks for a report and lands on its page
    response = web.post("/models/churn/versions/1/evidence/bias/")
    page = web.get(response["Location"]).content.decode()
    # then: the page says the run waits for a worker, not just "Queued"
    assert "Waiting for a worker" in page and "No worker is running to take this run" in page
    assert ">Queued<" not in page
    # when: a worker is alive again, the same run is simply queued
    jobs.worker_heartbeat(name="host:1", kind="database", beat=False, started_at=timezone.now())
    page = web.get(response["Location"]).content.decode()
    assert ">Queued<" in page and "Waiting for a worker" not in page
