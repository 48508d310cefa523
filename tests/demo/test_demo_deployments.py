"""The run command's deployment demo, end to end: a real worker process (``python -m worker --beat``, no broker)
runs the demo's verification, evidence and rollouts; the local target starts real serving processes and a real
router on 127.0.0.1; ``demo_deployments`` is the models' callers. Then a second run changes nothing.

It takes minutes (the evidence is computed for real), so it is marked slow.
"""

from __future__ import annotations

import importlib
import io
import os

import pytest
from django.core.management import CommandError, call_command

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.deployments.models import Deployment, DeploymentTarget
from apps.registry.models import ModelVersion
from apps.releases.models import Environment, ReleaseRequest
from apps.reports.models import AccessReview, Report, ReportSchedule
from tests.worker.local_target_fixtures import kill_all


@pytest.fixture
def worker(settings, tmp_path):
    """A worker process on the test's database, sharing this process's var folder; killed at the end, with every
    serving process and router the local target started."""
    from tests.support.db import database_url
    from tests.worker.test_standalone import ROOT, Processes

    settings.VAR_DIR = tmp_path / "var"
    settings.CELERY_BROKER_URL = "database://"
    settings.ASSAY_WORKER_WAKE_FILE = str(tmp_path / "worker.wake")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "controlplane.settings",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": "database://",
        "ASSAY_VAR_DIR": str(settings.VAR_DIR),
        "ASSAY_STORAGE_URL": settings.ASSAY_STORAGE_URL,
        "ASSAY_CHECKPOINT_URL": settings.ASSAY_CHECKPOINT_URL,
        "ASSAY_AUDIT_SIGNING_KEY_FILE": settings.ASSAY_AUDIT_SIGNING_KEY_FILE,
        "ASSAY_REPORT_SIGNING_KEY_FILE": settings.ASSAY_REPORT_SIGNING_KEY_FILE,
        "ASSAY_REPORT_CERTIFICATE_FILE": settings.ASSAY_REPORT_CERTIFICATE_FILE,
        "ASSAY_WORKER_WAKE_FILE": settings.ASSAY_WORKER_WAKE_FILE,
        "ASSAY_DEPLOY_TICK_SECONDS": "1",
        "ASSAY_DEPLOY_POLL_SECONDS": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
    }
    group = Processes(env)
    try:
        yield group
    finally:
        group.stop_all()
        kill_all(settings.VAR_DIR / "deployments")


def installed_environments() -> None:
    """The environments every installation has (the releases app's data migration makes them), which a
    transactional test run before this one flushed with the rest of the database."""
    defaults = importlib.import_module("apps.releases.migrations.0002_default_environments").DEFAULTS
    for values in defaults:
        Environment.objects.get_or_create(name=values["name"], defaults=values)


def by_version(deployments: list[dict]) -> dict[tuple[str, int], dict]:
    return {(d["model"], d["version"]): d for d in deployments}


@pytest.mark.slow
@pytest.mark.embedded_pass  # the demo is the embedded setup's: scripts/run
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(900)
def test_the_demo_deploys_one_version_leaves_a_canary_waiting_and_shows_an_automatic_rollback(worker, api_client_for):
    # given an installation's environments, the demo loaded, a worker, and the demo's evidence and releases in
    installed_environments()
    call_command("demo_load", "--quiet")
    worker.worker("--concurrency", "2", "--beat")
    call_command("demo_evidence", "--wait", "180")
    call_command("demo_releases", "--wait", "400")

    # when the run command's last background step runs
    call_command("demo_deployments", "--wait", "300")

    # then a release manager sees, on the local target for production: credit-scoring v2 serving, fraud-detector
    # v1 serving beside a canary of v2 waiting for a person, and v3 rolled back by the engine on its error rate
    dave = api_client_for(User.objects.get(username="dave"))
    response = dave.get("/api/v1/deployments/", {"target": "local"})
    assert response.status_code == 200, response.json()
    seen = by_version(response.json()["results"])
    assert {key: d["state"] for key, d in seen.items()} == {
        ("credit-scoring", 2): "succeeded",
        ("fraud-detector", 1): "succeeded",
        ("fraud-detector", 2): "paused",
        ("fraud-detector", 3): "rolled_back",
    }
    assert {d["environment"] for d in seen.values()} == {"production"}
    assert seen[("credit-scoring", 2)]["traffic"] == {"stable": None, "new": 100, "shadow": False}

    canary = dave.get(seen[("fraud-detector", 2)]["url"]).json()
    assert canary["strategy"] == "canary" and canary["traffic"] == {"stable": 75, "new": 25, "shadow": False}
    [step] = canary["timeline"]
    assert step["outcome"] == "passed" and step["figures"]["requests"] >= 10 and step["figures"]["errors"] == 0
    assert "waiting for a person" in canary["message"]

    rolled_back = dave.get(seen[("fraud-detector", 3)]["url"]).json()
    [step] = rolled_back["timeline"]
    assert step["outcome"] == "failed" and step["figures"]["error_rate"] == 1.0 and step["figures"]["requests"] >= 10
    started = AuditEvent.objects.get(action="deployment.rollback_started", target_id=rolled_back["id"])
    assert started.actor_type == "system" and "error rate" in started.reason
    assert AuditEvent.objects.filter(action="deployment.rolled_back", target_id=rolled_back["id"]).exists()

    # and the target itself serves that split: 75 % fraud-detector v1, 25 % v2, v3 gone
    from worker.drivers.registry import driver_for

    observed = driver_for(DeploymentTarget.objects.get(name="local")).observe("fraud-detector")
    numbers = dict(ModelVersion.objects.filter(model__name="fraud-detector").values_list("pk", "number"))
    assert {numbers[int(m.version_id)]: m.weight for m in observed.members} == {1: 75, 2: 25}

    # and the new versions were released with four eyes: requested by priya, approved by bob, written by alice
    for number in (2, 3):
        release = ReleaseRequest.objects.get(version__model__name="fraud-detector", version__number=number)
        assert release.status == "approved" and release.requested_by.username == "priya"
        assert [a.approver.username for a in release.approvals.all()] == ["bob"]
        assert release.version.created_by.username == "alice"

    # and, last, the compliance officer's report of fraud-detector's production release: generated by the worker,
    # signed, with its evidence pack
    call_command("audit_keygen", "--if-missing", stdout=io.StringIO())
    call_command("report_certificate", "--if-missing", stdout=io.StringIO())
    call_command("demo_reports", "--wait", "300")
    report = Report.objects.get()
    assert report.status == "succeeded", report.error
    assert set(report.files) == {"pdf", "html", "pack"} and report.requested_by_name == "carol"
    assert report.release.model.name == "fraud-detector" and report.events > 0
    # with a monthly report scheduled and an access review of credit-risk under way
    assert ReportSchedule.objects.get().cadence == "monthly"
    review = AccessReview.objects.get()
    assert review.items.filter(decision="attested").count() == 2 and review.items.filter(decision="pending").exists()

    # when it runs again (the worker stopped, so that nothing else writes meanwhile)
    worker.stop_all()
    counts = _counts()
    out = io.StringIO()
    call_command("demo_deployments", "--wait", "30", stdout=out)
    call_command("demo_reports", "--wait", "1", stdout=out)

    # then it changes nothing and says what is there
    assert _counts() == counts
    assert out.getvalue().count("already there") == 8, out.getvalue()


def _counts() -> dict:
    return {
        "audit": AuditEvent.objects.count(),
        "deployments": Deployment.objects.count(),
        "versions": ModelVersion.objects.count(),
        "releases": ReleaseRequest.objects.count(),
        "targets": DeploymentTarget.objects.count(),
        "reports": Report.objects.count(),
        "states": sorted(Deployment.objects.values_list("state", "phase", "fence")),
    }


def test_without_the_demo_releases_it_says_what_it_waited_for_and_deploys_nothing(make_user):
    # given the demo's people, but no release approved yet (demo_releases has not run)
    for role, name in (("admin", "admin"), ("contributor", "alice"), ("contributor", "priya")):
        make_user(role, username=name)
    make_user("reviewer", username="bob")
    make_user("release_manager", username="dave")
    # when the deployments step runs with little time
    with pytest.raises(CommandError, match="gave up waiting for demo_releases' approvals for production"):
        call_command("demo_deployments", "--wait", "1")
    # then nothing was deployed, no target added
    assert not DeploymentTarget.objects.exists() and not Deployment.objects.exists()
