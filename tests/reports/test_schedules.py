# ruff: noqa: F811 - pytest fixtures imported from other modules are parameters here
"""Scheduled reports: made for the period just ended, kept in the report store, announced by webhook.

What a compliance officer relies on: a monthly report appears without anyone asking, covers exactly the last
month, is written where it cannot be changed (a read-only file; on S3 an object under Object Lock in compliance
mode), and the team's systems hear of it. The S3 test runs against the Ceph RADOS gateway .ci/run starts.
"""

from __future__ import annotations

import json
import os
import stat
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import pytest

from apps.accounts.principals import principal_for_user
from apps.audit import checkpoints
from apps.audit.models import AuditEvent
from apps.core.principals import Principal
from apps.notifications import services as notifications
from apps.notifications.models import WebhookDelivery
from apps.reports import schedules
from apps.reports.certificate import load_report_signer
from apps.reports.models import Report, ReportSchedule
from tests.registry.fixtures import s3  # noqa: F401 - the S3 server of the storage tests
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

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def officer(make_user):
    checkpoints.load_signing_key(create=True)
    load_report_signer(create=True)
    return make_user("compliance_officer", username="cleo")


def test_periods_start_on_monday_and_on_the_first_of_the_month():
    moment = datetime(2026, 3, 18, 15, 30, tzinfo=UTC)  # a Wednesday
    assert schedules.period_start("weekly", moment) == datetime(2026, 3, 16, tzinfo=UTC)
    assert schedules.period_start("monthly", moment) == datetime(2026, 3, 1, tzinfo=UTC)
    assert schedules.next_start("monthly", datetime(2026, 12, 1, tzinfo=UTC)) == datetime(2027, 1, 1, tzinfo=UTC)
    assert schedules.previous_start("monthly", datetime(2026, 3, 1, tzinfo=UTC)) == datetime(2026, 2, 1, tzinfo=UTC)
    assert schedules.previous_start("weekly", datetime(2026, 3, 16, tzinfo=UTC)) == datetime(2026, 3, 9, tzinfo=UTC)


def test_a_monthly_report_covers_last_month_lands_read_only_in_the_store_and_is_announced(
    officer, api_client_for, team, settings, tmp_path, react, make_user
):
    settings.ASSAY_REPORT_STORE_URL = (tmp_path / "store").as_uri()
    root = principal_for_user(make_user("admin", username="root"))
    notifications.allowed_host_create(actor=root, host="127.0.0.1", allow_http=True)
    notifications.webhook_create(actor=root, team=team, url="http://127.0.0.1:9/hook", events=["report.generated"])
    # when the officer schedules a monthly report on every team
    client = api_client_for(officer)
    response = client.post("/api/v1/report-schedules/", {"kind": "period", "cadence": "monthly"}, format="json")
    assert response.status_code == 201, response.content
    schedule = ReportSchedule.objects.get()
    first = schedule.next_run_at
    assert first.day == 1 and first.hour == 0 and first > datetime.now(UTC)
    # and the beat finds it due
    [report] = schedules.schedules_run_due(now=first)
    assert schedules.schedules_run_due(now=first) == []  # the same period is never made twice
    assert report.until == first and report.since == schedules.previous_start("monthly", first)
    assert report.requested_by_name.startswith("schedule ")
    assert run_job(report.job_id) == "succeeded"
    report.refresh_from_db()
    # then its PDF is in the store, read-only, and the report says where
    kept = Path(urlparse(report.files["pdf"]["store"]).path)
    assert kept.is_file() and kept.parent.parent.parent == tmp_path / "store"
    assert not os.stat(kept).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    # and the team's webhook is told, with the report's link and digests
    react()
    delivery = json.loads(WebhookDelivery.objects.get(event="report.generated").body)
    assert delivery["data"]["files"]["pdf"]["sha256"] == report.files["pdf"]["sha256"]
    assert str(report.public_id) in delivery["data"]["url"]
    schedule.refresh_from_db()
    assert schedule.next_run_at == schedules.next_start("monthly", first)


def test_who_may_schedule(officer, make_user, api_client_for, team):
    body = {"kind": "period", "cadence": "weekly"}
    assert (
        api_client_for(make_user("auditor", username="erin")).post("/api/v1/report-schedules/", body).status_code == 403
    )
    assert (
        api_client_for(make_user("viewer", username="v", team=team)).post("/api/v1/report-schedules/", body).status_code
        == 403
    )
    team_officer = api_client_for(make_user("compliance_officer", username="tess", team=team))
    assert team_officer.post("/api/v1/report-schedules/", body).status_code == 403  # every team needs a global role
    assert team_officer.post("/api/v1/report-schedules/", {**body, "team": team.name}).status_code == 201
    bad = api_client_for(officer).post("/api/v1/report-schedules/", {"kind": "release", "cadence": "weekly"})
    assert bad.status_code == 400
    assert ReportSchedule.objects.count() == 1


def test_on_s3_with_object_lock_the_report_cannot_be_deleted(officer, s3, settings):
    """Against the Ceph RADOS gateway (.ci/run starts it): a bucket made with Object Lock enabled."""
    bucket = f"assay-reports-{uuid.uuid4().hex[:8]}"
    s3.client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    settings.ASSAY_REPORT_STORE_URL = f"s3://{bucket}/kept"
    settings.ASSAY_REPORT_RETENTION_DAYS = 1
    schedule = schedules.schedule_create(
        actor=principal_for_user(officer), kind="period", cadence="weekly", formats=["pdf"]
    )
    [report] = schedules.schedules_run_due(now=schedule.next_run_at)
    assert run_job(report.job_id) == "succeeded"
    report.refresh_from_db()
    stored = report.files["pdf"]
    assert stored["object_lock"] is True and stored["store"].startswith(f"s3://{bucket}/kept/period/")
    key = stored["store"].split("/", 3)[3]
    head = s3.client.head_object(Bucket=bucket, Key=key)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    version = head.get("VersionId")
    with pytest.raises(Exception, match="AccessDenied|locked|retention|WORM"):
        s3.client.delete_object(Bucket=bucket, Key=key, VersionId=version)
    assert Report.objects.filter(schedule=schedule).count() == 1


def test_a_scheduled_report_reads_as_its_owner_and_stops_when_the_owner_is_gone(officer, approved, make_user):
    """The report is read as the person who scheduled it may see: never with nobody's access (an empty
    report) nor everyone's. When that person is deactivated the schedule stops, and says so on the trail."""
    from apps.reports import overviews

    schedule = schedules.schedule_create(actor=principal_for_user(officer), kind="period", cadence="monthly")
    [report] = schedules.schedules_run_due(now=schedule.next_run_at)
    assert report.job.principal["name"] == "cleo"
    reader = Principal.from_dict(report.job.principal)
    content = overviews.period_content(reader=reader, team=None, since=report.since, until=report.until)
    assert [r["id"] for r in content.context["releases"]] == [str(approved.public_id)]
    # when the owner leaves
    officer.is_active = False
    officer.save(update_fields=["is_active"])
    assert schedules.schedules_run_due(now=schedules.next_start("monthly", schedule.next_run_at)) == []
    schedule.refresh_from_db()
    assert schedule.enabled is False
    assert AuditEvent.objects.filter(action="report_schedule.disabled", target_id=str(schedule.public_id)).exists()
