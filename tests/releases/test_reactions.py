# ruff: noqa: F811 - pytest fixtures imported from other modules are parameters here
"""Releases react to other apps' events, and their own events reach the teams' webhooks, once each.

Each reaction is a job (``apps.jobs.events``): the tests run the queued reactions with ``react()``, which
drives them through the real job runner as a worker would.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.evidence import services as evidence
from apps.jobs import events
from apps.jobs.models import Job, JobStatus
from apps.notifications import services as notifications
from apps.notifications.models import WebhookDelivery
from apps.registry import services as registry
from apps.releases import services
from apps.releases.choices import ReleaseStatus
from apps.releases.models import Approval, ReleaseRequest
from tests.factories.policies import pii_run
from tests.notifications.conftest import admin, admin_principal, local_allowed, receiver  # noqa: F401 - fixtures
from tests.releases.conftest import who
from tests.releases.test_services import approve, reject, status_of
from worker.runner import run_job

pytestmark = pytest.mark.django_db

RELEASE_WEBHOOK_EVENTS = ["release.requested", "release.approval_needed", "release.approved", "release.rejected"]


@pytest.fixture
def hook(make_user, team, receiver, local_allowed):
    """The team's webhook on every release event, pointing at the real receiver on 127.0.0.1."""
    officer = make_user("compliance_officer", username="olga", team=team)
    webhook, _ = notifications.webhook_create(
        actor=who(officer), team=team, url=receiver.url, events=RELEASE_WEBHOOK_EVENTS
    )
    return webhook


@pytest.fixture
def published():
    """published() -> the release.* events published since the fixture started, as a test subscriber saw them."""
    saved = {name: dict(subs) for name, subs in events._subscriptions.items()}
    seen: list[events.Event] = []
    for name in events.EVENTS:
        if name.startswith("release."):
            events.subscribe(name, lambda event, report: seen.append(event), subscriber="tests")
    yield lambda: [e.name for e in seen]
    events._subscriptions.clear()
    events._subscriptions.update(saved)


def _deliveries() -> list[tuple[str, dict]]:
    return [(d.event, json.loads(d.body)["data"]) for d in WebhookDelivery.objects.order_by("id")]


def test_a_release_s_events_reach_its_team_s_webhook_once_each_with_the_same_body_as_before(
    hook, request_release, requester, reviewer, version, react, receiver
):
    # when a release is requested, the reactions run, and a reviewer approves it
    release = request_release(requester, version)
    assert not WebhookDelivery.objects.exists()  # the deliveries are the notifications app's reaction
    react()
    approve(reviewer, release)
    react()
    # then the team's webhook has one delivery per event, with the body users have always received
    expected = {
        "release": str(release.public_id),
        "model": "churn",
        "version": 1,
        "environment": "staging",
        "emergency": False,
    }
    assert _deliveries() == [
        ("release.requested", {**expected, "status": "pending_approval"}),
        ("release.approval_needed", {**expected, "status": "pending_approval"}),
        ("release.approved", {**expected, "status": "approved"}),
    ]
    # and the delivery goes out signed to the receiver as before
    approved = WebhookDelivery.objects.get(event="release.approved")
    assert run_job(approved.job_id) == "succeeded"
    (got,) = receiver.received
    assert got.headers["Assay-Event"] == "release.approved" and got.json["data"]["status"] == "approved"
    # and running a webhook reaction again (its worker died before it was marked done) delivers nothing new
    reaction = Job.objects.get(kind=events.job_kind("release.approved"), params__subscriber="notifications")
    Job.objects.filter(pk=reaction.pk).update(status=JobStatus.QUEUED, lease_token="")
    assert react() == [("event:release.approved", "notifications", "succeeded")]
    assert WebhookDelivery.objects.filter(event="release.approved").count() == 1


def test_every_release_state_change_is_published(request_release, requester, reviewer, version, published, react):
    rejected = request_release(requester, version)
    reject(reviewer, rejected)
    cancelled = request_release(requester, version)
    services.release_cancel(actor=who(requester), release_id=cancelled.public_id, reason="wrong build")
    expired = request_release(requester, version)
    ReleaseRequest.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert services.releases_expire_due() == 1
    react()
    assert published() == [
        *("release.requested", "release.approval_needed", "release.rejected"),
        *("release.requested", "release.approval_needed", "release.cancelled"),
        *("release.requested", "release.approval_needed", "release.expired"),
    ]


def test_a_model_change_re_judges_the_releases_of_its_versions(
    request_release, requester, reviewer, author, version, react, audit_mark, published
):
    # given an approved release of a minimal-risk model
    release = request_release(requester, version)
    approve(reviewer, release)
    react()
    assert status_of(release) == ReleaseStatus.APPROVED
    # when its owner makes it a high-risk model
    registry.model_update(actor=who(author), name="churn", changes={"risk_tier": "high", "description": "churn"})
    (job,) = Job.objects.filter(kind=events.job_kind("model.updated"))
    assert job.params["payload"] == {"model_id": version.model_id, "fields": ["description", "risk_tier"]}
    assert job.params["subscriber"] == "releases" and job.status == JobStatus.QUEUED
    assert status_of(release) == ReleaseStatus.APPROVED  # judged by a worker, not in the edit
    mark = audit_mark()
    react()
    # then the release was judged on the new facts: its decision changed, so it is pending with its approval void
    assert "release.reset" in mark.actions()
    assert status_of(release) != ReleaseStatus.APPROVED
    assert Approval.objects.get(release=release).void
    assert "release.reset" in published()
    release.refresh_from_db()
    assert release.decision["input"]["model"]["risk_tier"] == "high"


def test_an_edit_that_changes_nothing_publishes_nothing(author, version):
    registry.model_update(actor=who(author), name="churn", changes={"risk_tier": version.model.risk_tier})
    assert not Job.objects.filter(kind=events.job_kind("model.updated")).exists()


def test_a_reviewed_finding_re_judges_the_releases_of_the_versions_trained_on_it(
    request_release, requester, reviewer, high_version, react, audit_mark
):
    # given a release of a version whose training data a PII scan found an e-mail column in, after the request
    release = request_release(requester, high_version)
    react()
    training = high_version.training_datasets.get()
    scan = pii_run(training, findings=[("contact", "feature", "EMAIL_ADDRESS")])
    mark = audit_mark()
    # when a reviewer marks the finding a false positive
    evidence.evidence_finding_review(
        actor=who(reviewer),
        run_id=scan.public_id,
        finding="contact:EMAIL_ADDRESS",
        verdict="false_positive",
        reason="synthetic addresses",
    )
    (job,) = Job.objects.filter(kind=events.job_kind("evidence_finding.reviewed"))
    assert job.params["payload"]["dataset_id"] == training.pk
    assert ("event:evidence_finding.reviewed", "releases", "succeeded") in react()
    # then the release was judged again with the scan and its review
    assert "release.reset" in mark.actions()
    release.refresh_from_db()
    assert str(scan.public_id) in json.dumps(release.decision)
