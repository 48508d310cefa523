# ruff: noqa: F811 - pytest fixtures imported from other modules are parameters here
"""Event reactions across real worker processes: a worker killed between a change and its reactions loses nothing.

A bias report is computed by a real ``celery worker`` (``tests/worker/test_processes.py``'s harness,
on the suite's database and broker). The worker is SIGKILLed, process group and all, right after the
transaction that finished the run (and published ``evidence_run.succeeded``) commits, before any reaction
ran: the point where an after-commit callback used to lose the reaction for good. Another worker then
re-judges the release and delivers the webhook to a real HTTP receiver, each exactly once. A second test
kills the worker right after the webhook reaction wrote its delivery, before its job was marked finished:
the reaction runs again and still writes one delivery.
"""

from __future__ import annotations

import time

import pytest

from apps.audit.models import AuditEvent
from apps.demo import artifacts as demo
from apps.evidence import services as evidence
from apps.evidence.models import EvidenceRun
from apps.jobs import services as jobs
from apps.jobs.events import job_kind
from apps.jobs.models import Job, JobStatus
from apps.notifications import services as notifications
from apps.notifications.models import WebhookDelivery
from apps.registry.choices import RiskTier
from apps.releases import services as releases
from apps.releases.models import Environment, ReleaseRequest
from tests.evidence.conftest import loaded_version, run, unscored  # noqa: F401 - fixtures
from tests.factories.registry import RegisteredModelFactory
from tests.notifications.conftest import (  # noqa: F401 - fixtures
    admin,
    admin_principal,
    local_allowed,
    officer,
    officer_principal,
    receiver,
)
from tests.registry.fixtures import contributor, contributor_principal  # noqa: F401 - fixtures
from tests.worker.job_fixtures import read_trace
from tests.worker.test_processes import LEASE_SECONDS, wait_for, workers  # noqa: F401 - fixture

pytestmark = [
    pytest.mark.broker,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(240),
]

SUCCEEDED = job_kind("evidence_run.succeeded")
FEATURES = ["income", "tenure", "balance", "visits"]


@pytest.fixture
def model(team):
    """A minimal-risk model without sensitive data categories: the shipped packs let it be requested."""
    return RegisteredModelFactory(name="churn", owner_team=team, risk_tier=RiskTier.MINIMAL, data_categories=[])


@pytest.fixture
def version(loaded_version, unscored):  # noqa: F811
    """A ready ONNX version of 'churn' with its evaluation dataset (verified in this process)."""
    data = demo.make_data(11, FEATURES, rows=300)
    return loaded_version(demo.onnx_logistic(data), "onnx", unscored(data))


@pytest.fixture
def setting_up(workers, settings, version, contributor_principal, officer_principal, receiver, local_allowed):  # noqa: F811
    """A ready version with a staging release request waiting, the team's webhook on evidence.completed,
    and workers that share this test's artifact folder, load the kill hooks and are swept quickly."""
    workers.env["ASSAY_STORAGE_URL"] = settings.ASSAY_STORAGE_URL
    workers.env["ASSAY_EXTRA_TASK_MODULES"] = "tests.worker.job_fixtures,tests.worker.event_fixtures"
    settings.ASSAY_JOB_QUEUED_GRACE_SECONDS = 0  # the sweeper re-sends queued jobs at once
    Environment.objects.get_or_create(name="staging", defaults={"production": False})
    release = releases.release_request_create(
        actor=contributor_principal,
        model_name="churn",
        number=version.number,
        environment="staging",
        justification="quarterly refresh",
    )
    notifications.webhook_create(
        actor=officer_principal, team=version.model.owner_team, url=receiver.url, events=["evidence.completed"]
    )
    return release


def _sweep_until(what: str, done, *, timeout: float = 90.0):
    """Run the sweeper (as beat would) until ``done()``: it re-queues jobs whose worker died and re-sends the rest."""

    def check():
        jobs.job_sweep()
        return done()

    return wait_for(what, check, timeout=timeout, interval=0.5, state=_jobs_state)


def _jobs_state() -> str:
    rows = Job.objects.order_by("pk").values_list("pk", "kind", "status", "attempts", "error")
    return "jobs: " + "; ".join(str(row) for row in rows)


def _reset_events(release: ReleaseRequest) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="release.reset", target_id=str(release.public_id)))


def _delivered(receiver) -> list:  # noqa: F811
    return [r for r in receiver.received if r.json["event"] == "evidence.completed"]


def _all_settled(receiver) -> bool:  # noqa: F811
    idle = not Job.objects.exclude(status__in=(JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)).exists()
    return idle and bool(_delivered(receiver))


def test_a_worker_killed_after_a_run_commits_loses_none_of_its_reactions(
    setting_up,
    workers,
    contributor_principal,
    version,
    receiver,  # noqa: F811
):
    release = setting_up
    # given a worker that dies as soon as an evidence run's success is committed
    workers.env["ASSAY_TEST_DIE_AFTER_PUBLISH"] = "evidence_run.succeeded"
    workers.start("first")
    # when a bias report is requested and the worker computes it
    requested = evidence.evidence_request(actor=contributor_principal, kind="bias", version=version)
    wait_for(
        "the worker to die after the run's commit",
        lambda: read_trace(workers.trace, "kills.log"),
        timeout=120,
        state=_jobs_state,
    )
    workers.kill("first")  # reap it
    # then the run is finished and its reactions wait in the job table, none of them run
    run_row = EvidenceRun.objects.get(pk=requested.run.pk)
    assert run_row.status == "succeeded"
    reactions = Job.objects.filter(kind=SUCCEEDED)
    assert sorted(reactions.values_list("params__subscriber", flat=True)) == ["notifications", "releases"]
    assert set(reactions.values_list("status", flat=True)) == {JobStatus.QUEUED}
    assert not _reset_events(release) and not WebhookDelivery.objects.exists()

    # when another worker starts (without the hook) and the sweeper runs as beat would
    del workers.env["ASSAY_TEST_DIE_AFTER_PUBLISH"]
    workers.start("second")
    _sweep_until("the reactions to run and the webhook to arrive", lambda: _all_settled(receiver))
    time.sleep(LEASE_SECONDS + 1)  # any duplicate would have been sent by now
    jobs.job_sweep()
    time.sleep(1)

    # then each subscriber reacted once: the release was re-judged on the new report, once
    assert sorted(reactions.values_list("params__subscriber", "status")) == [
        ("notifications", JobStatus.SUCCEEDED),
        ("releases", JobStatus.SUCCEEDED),
    ]
    assert len(_reset_events(release)) == 1
    release.refresh_from_db()
    assert str(run_row.public_id) in [e["run"] for e in release.decision["evidence"]]
    # and the team's webhook got evidence.completed exactly once
    (got,) = _delivered(receiver)
    assert got.json["data"]["run"] == str(run_row.public_id)
    (delivery,) = WebhookDelivery.objects.all()
    assert delivery.state == "succeeded" and delivery.attempt_count == 1
    # and the interrupted evidence job ran again without publishing the success a second time
    job = Job.objects.get(pk=run_row.job_id)
    assert job.status == JobStatus.SUCCEEDED and job.attempts == 2
    assert AuditEvent.objects.filter(action="evidence_run.succeeded", target_id=str(run_row.public_id)).count() == 1


def test_a_webhook_reaction_run_twice_writes_one_delivery(
    setting_up,
    workers,
    contributor_principal,
    version,
    receiver,  # noqa: F811
):
    # given a worker that dies right after the webhook reaction wrote its deliveries, before its job finished
    workers.env["ASSAY_TEST_DIE_AFTER_REACTION"] = "notifications:evidence_run.succeeded"
    workers.start("first")
    requested = evidence.evidence_request(actor=contributor_principal, kind="bias", version=version)
    wait_for(
        "the worker to die after the webhook reaction",
        lambda: read_trace(workers.trace, "kills.log"),
        timeout=120,
        state=_jobs_state,
    )
    workers.kill("first")
    (reaction,) = Job.objects.filter(kind=SUCCEEDED, params__subscriber="notifications")
    assert reaction.status == JobStatus.RUNNING  # its worker died holding it
    assert WebhookDelivery.objects.count() == 1  # the reaction's own transaction had committed

    # when another worker takes over once the lease expired
    del workers.env["ASSAY_TEST_DIE_AFTER_REACTION"]
    workers.start("second")
    _sweep_until("the reaction to run again and the webhook to arrive", lambda: _all_settled(receiver))
    time.sleep(1)

    # then the reaction ran twice, and the webhook still got the event once
    reaction.refresh_from_db()
    assert reaction.status == JobStatus.SUCCEEDED and reaction.attempts == 2
    assert WebhookDelivery.objects.count() == 1
    (got,) = _delivered(receiver)
    assert got.json["data"]["run"] == str(requested.run.public_id)
