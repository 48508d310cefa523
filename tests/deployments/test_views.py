"""Deployment pages: the targets page and its form, the deployments list, a deployment's page with its live
step timeline and its Halt / Resume / Roll back / Undeploy forms, and "running where" on the registry's pages.

Real services and the real database; only the rollout's own worker records (traffic applied, steps judged)
are written as rows, as a worker leaves them (the engine is tested in test_engine and test_local_rollouts).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.deployments import services
from apps.deployments.choices import DeploymentState, Phase, StepOutcome
from apps.deployments.models import Deployment, DeploymentStep, DeploymentTarget
from tests.deployments.conftest import stored_version, who

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page(client: Client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response.content.decode()


def progressing(deployment, **fields):
    """The rollout as a worker leaves it mid-step."""
    values = {"state": DeploymentState.PROGRESSING, "phase": Phase.ANALYSE, "traffic": {"new": 100, "stable": None}}
    values.update(fields)
    Deployment.objects.filter(pk=deployment.pk).update(**values)
    deployment.refresh_from_db()
    return deployment


def serving(deployment):
    Deployment.objects.filter(pk=deployment.pk).update(
        state=DeploymentState.SUCCEEDED,
        phase=Phase.DONE,
        traffic={"new": 100, "stable": None},
        finished_at=timezone.now(),
    )
    deployment.refresh_from_db()
    return deployment


@pytest.fixture
def canary(lab, release, start, approve, version2):
    """v1 serving on ``lab``; v2 rolling out as a canary at 10 %, its first step judged and passed, the second
    under analysis."""
    stable = serving(start(release))
    rollout = progressing(
        start(approve(version2), strategy="canary"), step_index=1, traffic={"stable": 90, "new": 10, "shadow": False}
    )
    assert rollout.replaces == stable
    now = timezone.now()
    DeploymentStep.objects.create(
        deployment=rollout,
        index=0,
        weight=10,
        started_at=now - timedelta(minutes=3),
        ready_at=now - timedelta(minutes=3),
        finished_at=now - timedelta(minutes=2),
        outcome=StepOutcome.PASSED,
        figures={"requests": 412, "errors": 3, "error_rate": 0.007282, "p99_ms": 182.5, "restarts": 0},
    )
    DeploymentStep.objects.create(deployment=rollout, index=1, weight=50, started_at=now - timedelta(minutes=1))
    return rollout


# ---------------------------------------------------------------------------------------------
# Deploying a release from its page


def test_a_release_manager_deploys_an_approved_release_from_its_page(lab, release, manager, viewer, audit_mark):
    # given an approved release: its page offers the release manager a Deploy button, and a viewer none
    release_page = f"/releases/{release.public_id}/"
    deploy_page = f"/releases/{release.public_id}/deploy/"
    assert 'id="deploy-link"' in page(logged_in(manager), release_page)
    assert 'id="deploy-link"' not in page(logged_in(viewer), release_page)
    web = logged_in(manager)
    html = page(web, deploy_page)
    assert 'id="deploy-form"' in html and "lab (Local serving" in html
    # when they deploy it as a canary with steps of their own
    mark = audit_mark()
    response = web.post(
        deploy_page,
        {
            "target": "lab",
            "strategy": "canary",
            "kind": "online",
            "steps": '[{"weight": 20, "analysis": 60}, {"weight": 100, "analysis": 60}]',
            "reason": "quarterly refresh",
        },
    )
    # then the rollout starts, audited, and the page goes to the new deployment
    deployment = Deployment.objects.get(release=release)
    assert response.status_code == 302 and response["Location"] == f"/deployments/{deployment.public_id}/"
    assert deployment.strategy == "canary" and [s["weight"] for s in deployment.steps] == [20, 100]
    assert deployment.reason == "quarterly refresh" and deployment.state == DeploymentState.PENDING
    assert mark.actions() == ["deployment.started"]
    assert "Deploying churn v1 to lab." in page(web, response["Location"])


def test_a_refused_deploy_comes_back_with_the_reason_and_starts_nothing(
    lab, release, start, manager, admin, production, audit_mark
):
    services.target_create(actor=who(admin), name="prod-eu", kind="local", environment="production")
    web = logged_in(manager)
    deploy_page = f"/releases/{release.public_id}/deploy/"
    # steps that are not JSON, or that a direct deployment does not take, are errors next to the steps
    mark = audit_mark()
    html = web.post(deploy_page, {"target": "lab", "strategy": "direct", "kind": "online", "steps": "[{"})
    assert html.status_code == 400 and "Not valid JSON" in html.content.decode()
    html = web.post(deploy_page, {"target": "lab", "strategy": "direct", "kind": "online", "steps": '[{"weight": 50}]'})
    assert html.status_code == 400 and "a direct deployment has one step at weight 100" in html.content.decode()
    # a batch deployment without a schedule is refused by the service, next to the schedule
    html = web.post(deploy_page, {"target": "lab", "strategy": "direct", "kind": "batch"})
    assert html.status_code == 400 and "A cron expression of five fields." in html.content.decode()
    # a target of another environment is not offered, and not taken
    assert "prod-eu" not in page(web, deploy_page)
    html = web.post(deploy_page, {"target": "prod-eu", "strategy": "direct", "kind": "online"})
    assert html.status_code == 400 and "Select a valid choice" in html.content.decode()
    assert not Deployment.objects.filter(release=release).exists() and mark.new() == []
    # and while a rollout of the model is under way on the target, a second is refused, saying why
    progressing(start(release))
    html = web.post(deploy_page, {"target": "lab", "strategy": "direct", "kind": "online"}).content.decode()
    assert "let it finish, halt or roll it back first" in html
    assert Deployment.objects.filter(release=release).count() == 1


def test_the_deploy_page_is_refused_and_audited_for_whoever_may_not_deploy(lab, release, viewer, officer, audit_mark):
    for person in (viewer, officer):
        mark = audit_mark()
        assert logged_in(person).get(f"/releases/{release.public_id}/deploy/").status_code == 403
        response = logged_in(person).post(f"/releases/{release.public_id}/deploy/", {"target": "lab"})
        assert response.status_code == 403
        assert [(e.action, e.outcome) for e in mark.new()] == [("deployment.started", "denied")] * 2
    assert not Deployment.objects.filter(release=release).exists()


def test_a_release_not_approved_offers_no_deploy(lab, request_release, requester, version, manager):
    pending = request_release(requester, version, "staging")
    assert pending.status != "approved"
    assert 'id="deploy-link"' not in page(logged_in(manager), f"/releases/{pending.public_id}/")
    html = page(logged_in(manager), f"/releases/{pending.public_id}/deploy/")
    assert 'id="not-approved"' in html and 'id="deploy-form"' not in html


# ---------------------------------------------------------------------------------------------
# Targets


def test_an_admin_sees_the_targets_with_settings_but_never_credentials(admin, staging, audit_mark):
    # given a Kubernetes target with a token, and a reconciler's look that found drift
    target = services.target_create(
        actor=who(admin),
        name="gpu-eu",
        kind="kubernetes",
        environment="staging",
        settings={"namespace": "models", "replicas": {"min": 1, "max": 3}},
        credentials={"token": "kube-token-never-shown"},
    )
    services.target_reconciled(
        target_id=target.pk,
        findings=[{"key": "unknown_service:x:", "kind": "unknown_service", "service": "x", "message": "x runs here"}],
    )
    mark = audit_mark()

    # when the admin opens the targets page
    html = page(logged_in(admin), "/targets/")

    # then the target reads with labels, its settings summarised, "credentials set" and its drift
    assert 'data-target="gpu-eu"' in html and "Kubernetes cluster" in html and "Staging" in html
    assert "namespace" in html and "models" in html and "credentials set" in html
    assert "kube-token-never-shown" not in html
    assert "Service not deployed by Assay" in html and "x runs here" in html
    assert mark.new() == []  # a read writes nothing


def test_an_admin_adds_a_target_from_the_form(admin, staging, audit_mark):
    web = logged_in(admin)
    mark = audit_mark()
    response = web.post(
        "/targets/",
        {
            "name": "lab-2",
            "kind": "local",
            "environment": "staging",
            "settings": '{"router_port": 0}',
            "credentials": '{"router_token": "secret-router-token"}',
            "enabled": "on",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/targets/"
    target = DeploymentTarget.objects.get(name="lab-2")
    assert target.settings == {"router_port": 0} and target.credentials_set
    assert mark.actions() == ["deployment_target.created"]
    html = page(web, "/targets/")
    assert "Target lab-2 added." in html and "secret-router-token" not in html


def test_a_bad_setting_is_a_form_error_that_keeps_the_input(admin, staging, audit_mark):
    # given an admin who misspells a setting of a Kubernetes target
    web = logged_in(admin)
    mark = audit_mark()
    response = web.post(
        "/targets/",
        {
            "name": "gpu-eu",
            "kind": "kubernetes",
            "environment": "staging",
            "settings": '{"namespace": "models", "replica": 3}',
            "credentials": '{"token": "typed-secret"}',
            "description": "GPU pool",
        },
    )
    # then the form comes back with the service's reason next to the settings, and what was typed
    html = response.content.decode()
    assert response.status_code == 400
    assert "replica: Unknown key for a kubernetes target" in html and "valid keys:" in html
    assert "gpu-eu" in html and "GPU pool" in html and "&quot;replica&quot;: 3" in html
    # but not the credentials, which never go back to a page
    assert "typed-secret" not in html
    assert not DeploymentTarget.objects.filter(name="gpu-eu").exists() and mark.new() == []


def test_a_form_that_is_not_json_or_names_a_taken_target_says_so(admin, staging, lab):
    web = logged_in(admin)
    html = web.post("/targets/", {"name": "x", "kind": "local", "environment": "staging", "settings": "{oops"})
    assert "Not valid JSON" in html.content.decode()
    html = web.post("/targets/", {"name": "lab", "kind": "local", "environment": "staging"}).content.decode()
    assert "A target named &#x27;lab&#x27; exists already." in html


def test_an_admin_changes_a_target_keeping_or_replacing_its_credentials(admin, staging, production, audit_mark):
    # given a kubernetes target with credentials
    target = services.target_create(
        actor=who(admin),
        name="gpu-eu",
        kind="kubernetes",
        environment="staging",
        settings={"server": "https://k8s.example:6443", "namespace": "models"},
        credentials={"token": "first-secret"},
    )
    fingerprint = target.credentials_fingerprint
    web = logged_in(admin)
    path = f"/targets/{target.public_id}/"
    html = page(web, path)
    assert "first-secret" not in html and "&quot;namespace&quot;: &quot;models&quot;" in html
    assert f'href="{path}"' in page(web, "/targets/")
    # when the admin moves it to production, disables it and leaves the credentials empty
    mark = audit_mark()
    settings = '{"server": "https://k8s.example:6443", "namespace": "scoring"}'
    response = web.post(path, {"environment": "production", "settings": settings, "description": "EU pool"})
    # then it is saved, audited, and the credentials are kept
    assert response.status_code == 302 and response["Location"] == "/targets/"
    target.refresh_from_db()
    assert (target.environment.name, target.settings["namespace"], target.enabled) == ("production", "scoring", False)
    assert target.credentials_fingerprint == fingerprint and target.description == "EU pool"
    [event] = mark.new()
    assert event.action == "deployment_target.updated" and "first-secret" not in str(event.after)
    # when new credentials are typed they replace the old; "clear" removes them
    web.post(path, {"environment": "production", "settings": settings, "credentials": '{"token": "second"}'})
    target.refresh_from_db()
    assert target.credentials_set and target.credentials_fingerprint != fingerprint
    web.post(path, {"environment": "production", "settings": settings, "clear_credentials": "on"})
    target.refresh_from_db()
    assert not target.credentials_set
    # and a bad setting comes back next to the settings, the credentials typed not sent back
    response = web.post(
        path, {"environment": "production", "settings": '{"replica": 3}', "credentials": '{"token": "typed-secret"}'}
    )
    html = response.content.decode()
    assert response.status_code == 400 and "replica: Unknown key for a kubernetes target" in html
    assert "typed-secret" not in html


def test_a_target_with_a_history_is_not_deleted_one_without_is(lab, release, start, admin, audit_mark):
    web = logged_in(admin)
    start(release)
    # a target with a rollout under way (or any history) stays, saying why
    response = web.post(f"/targets/{lab.public_id}/delete/")
    assert response.status_code == 302 and response["Location"] == f"/targets/{lab.public_id}/"
    assert "has an active deployment" in page(web, response["Location"])
    assert DeploymentTarget.objects.filter(pk=lab.pk).exists()
    # a target nobody used is deleted, audited
    spare = services.target_create(actor=who(admin), name="spare", kind="local", environment="staging")
    mark = audit_mark()
    response = web.post(f"/targets/{spare.public_id}/delete/")
    assert response.status_code == 302 and response["Location"] == "/targets/"
    assert not DeploymentTarget.objects.filter(name="spare").exists()
    assert mark.actions() == ["deployment_target.deleted"]


def test_the_targets_page_is_refused_and_audited_for_anyone_but_admins(viewer, manager, lab):
    for person in (viewer, manager):
        before = AuditEvent.objects.filter(outcome="denied").count()
        assert logged_in(person).get("/targets/").status_code == 403
        assert logged_in(person).post("/targets/", {"name": "z", "kind": "local"}).status_code == 403
        assert logged_in(person).get(f"/targets/{lab.public_id}/").status_code == 403
        assert logged_in(person).post(f"/targets/{lab.public_id}/", {"environment": "staging"}).status_code == 403
        assert logged_in(person).post(f"/targets/{lab.public_id}/delete/").status_code == 403
        assert AuditEvent.objects.filter(outcome="denied").count() == before + 5
    assert not DeploymentTarget.objects.filter(name="z").exists()


# ---------------------------------------------------------------------------------------------
# Deployments list and page


def test_the_list_shows_the_rollouts_a_person_may_see(canary, viewer, manager, make_user):
    manager.first_name, manager.last_name = "Max", "Power"
    manager.save(update_fields=["first_name", "last_name"])
    html = page(logged_in(viewer), "/deployments/")
    assert f'data-deployment="{canary.public_id}"' in html
    assert "churn v2" in html and "Canary" in html and "Progressing" in html and "2 of 2" in html
    assert "10 % new" in html and "Max Power (max)" in html  # people by full name and username
    # someone without a role sees none of them, and the page of one is a 404
    stranger = logged_in(make_user())
    assert str(canary.public_id) not in page(stranger, "/deployments/")
    assert stranger.get(f"/deployments/{canary.public_id}/").status_code == 404
    assert page(stranger, "/deployments/?state=bogus")  # an unknown filter value is ignored


def test_the_deployment_page_shows_the_step_timeline_and_the_traffic_split(canary, viewer, release):
    html = page(logged_in(viewer), f"/deployments/{canary.public_id}/")
    # the rollout: where it is, each step's decision and the health it was judged on, with one time format
    assert "Step" in html and "2 of 2" in html and "analysing health" in html
    assert "Passed" in html and "Running" in html and 'Requests</span> <span class="mono">412' in html
    assert "0.73%" in html and "182 ms" in html and " UTC</time>" in html
    # the traffic split per member, the target, the release and the plan with its thresholds
    assert 'data-member="stable"' in html and 'data-member="new"' in html and "90 %" in html and "10 %" in html
    assert f'href="/releases/{canary.release.public_id}/"' in html and "lab" in html
    assert "judged over 60 s" in html and "error rate at most 2.00%" in html
    # a viewer gets no buttons; the page follows the rollout through its live part
    assert 'id="halt-form"' not in html and 'id="deployment-actions"' not in html
    assert 'data-live-url="/deployments/' in html and "?part=live" in html
    live = logged_in(viewer).get(f"/deployments/{canary.public_id}/?part=live")
    body = live.content.decode()
    assert live.status_code == 200 and 'data-live="1"' in body and "<html" not in body and 'id="step-table"' in body


def test_a_final_deployment_stops_following_and_shows_its_drift(lab, release, start, viewer):
    deployment = serving(start(release))
    services.target_reconciled(
        target_id=lab.pk,
        findings=[
            {
                "key": f"traffic_changed:{deployment.service}:",
                "kind": "traffic_changed",
                "service": deployment.service,
                "message": "live traffic is not as deployed",
            },
            {"key": "unknown_service:other:", "kind": "unknown_service", "service": "other", "message": "not ours"},
        ],
    )
    html = page(logged_in(viewer), f"/deployments/{deployment.public_id}/")
    assert "data-live-url" not in html and 'data-live="0"' in html
    assert "Traffic changed by hand" in html and "live traffic is not as deployed" in html
    assert "not ours" not in html  # another service's finding on the same target is not this page's


def test_a_break_glass_deployment_is_flagged(admin, production, request_release, version, start, manager, viewer):
    services.target_create(actor=who(admin), name="prod", kind="local", environment="production")
    emergency = request_release(
        manager, version, "production", emergency=True, change_reference="CHG-9", justification="outage"
    )
    deployment = start(emergency, target="prod")
    html = page(logged_in(viewer), f"/deployments/{deployment.public_id}/")
    assert 'id="emergency-banner"' in html and "Break-glass deployment." in html
    assert "break-glass" in page(logged_in(viewer), "/deployments/")


def test_the_buttons_follow_rbac_and_the_state(canary, manager, officer, viewer):
    path = f"/deployments/{canary.public_id}/"
    as_manager = page(logged_in(manager), path)
    assert 'id="halt-form"' in as_manager and 'id="rollback-form"' in as_manager
    assert 'id="resume-form"' not in as_manager and 'id="undeploy-form"' not in as_manager
    as_officer = page(logged_in(officer), path)  # compliance officers may halt, not roll back
    assert 'id="halt-form"' in as_officer and 'id="rollback-form"' not in as_officer


def test_halt_then_resume_then_rollback_through_the_page(canary, manager, officer, audit_mark):
    officer.first_name, officer.last_name = "Cleo", "Ward"
    officer.save(update_fields=["first_name", "last_name"])
    path = f"/deployments/{canary.public_id}"
    # a halt without a reason is refused with the service's words, and changes nothing
    web = logged_in(officer)
    mark = audit_mark()
    response = web.post(f"{path}/halt/", {"reason": " "})
    assert response.status_code == 302 and "A reason is required to halt it." in page(web, f"{path}/")
    canary.refresh_from_db()
    assert canary.state == DeploymentState.PROGRESSING and mark.new() == []

    # the compliance officer halts it with a reason
    web.post(f"{path}/halt/", {"reason": "complaints from the call centre"})
    canary.refresh_from_db()
    assert canary.state == DeploymentState.HALTED and mark.actions() == ["deployment.halted"]
    html = page(web, f"{path}/")
    assert "Halted: live traffic goes back" in html and "complaints from the call centre" in html
    assert "by Cleo Ward (cleo)" in html

    # the officer may not resume it (refused, audited); the release manager resumes it
    mark = audit_mark()
    assert web.post(f"{path}/resume/", {"reason": "fine"}).status_code == 403
    assert [(e.action, e.outcome) for e in mark.new()] == [("deployment.resumed", "denied")]
    manager_web = logged_in(manager)
    assert 'id="resume-form"' in page(manager_web, f"{path}/")
    mark = audit_mark()
    manager_web.post(f"{path}/resume/", {"reason": ""})  # every command is audited with its reason
    assert "A reason is required to resume it." in page(manager_web, f"{path}/") and mark.new() == []
    manager_web.post(f"{path}/resume/", {"reason": "cause found: a bad client"})
    canary.refresh_from_db()
    assert canary.state == DeploymentState.PROGRESSING and mark.actions() == ["deployment.resumed"]
    assert mark.new()[0].reason == "cause found: a bad client"

    # and rolls it back
    mark = audit_mark()
    manager_web.post(f"{path}/rollback/", {"reason": "latency"})
    canary.refresh_from_db()
    assert canary.state == DeploymentState.ROLLING_BACK and mark.actions() == ["deployment.rollback_started"]
    assert mark.new()[0].reason == "latency"


def test_undeploy_through_the_page(lab, release, start, manager, audit_mark):
    deployment = serving(start(release))
    web = logged_in(manager)
    assert 'id="undeploy-form"' in page(web, f"/deployments/{deployment.public_id}/")
    mark = audit_mark()
    web.post(f"/deployments/{deployment.public_id}/undeploy/", {"reason": "retired"})
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.UNDEPLOYED and mark.actions() == ["deployment.undeployed"]


def test_a_command_on_a_deployment_out_of_scope_is_a_404_and_audited(canary, make_user, audit_mark):
    stranger = logged_in(make_user())
    mark = audit_mark()
    assert stranger.post(f"/deployments/{canary.public_id}/halt/", {"reason": "x"}).status_code == 404
    assert stranger.post(f"/deployments/{canary.public_id}/explode/", {"reason": "x"}).status_code == 404
    assert [e.outcome for e in mark.new()] == ["denied"]
    canary.refresh_from_db()
    assert canary.state == DeploymentState.PROGRESSING


# ---------------------------------------------------------------------------------------------
# Running where


def test_running_where_on_the_inventory_model_and_version_pages(canary, viewer, make_user, other_team):
    web = logged_in(viewer)
    # the inventory: per environment, the target, each version with its share of traffic and since when
    inventory = page(web, "/")
    assert "Running where" in inventory and 'data-target="lab"' in inventory
    assert "v1" in inventory and "90 %" in inventory and "10 %" in inventory and "since <time" in inventory
    # the model page, with the rollout's state next to the new version
    model_page = page(web, "/models/churn/")
    assert 'id="running-where"' in model_page and "Progressing" in model_page
    assert f'href="/deployments/{canary.public_id}/"' in model_page
    # the version page: only that version's rows
    v1 = page(web, "/models/churn/versions/1/")
    assert 'id="running-where"' in v1 and "90 %" in v1 and "10 %" not in v1.split('id="running-where"')[1][:2000]
    # another team's viewer sees none of this
    other = logged_in(make_user("viewer", team=other_team, username="outsider"))
    assert 'data-target="lab"' not in page(other, "/")


def test_running_where_flags_drift(lab, release, start, viewer):
    deployment = serving(start(release))
    html = page(logged_in(viewer), "/")
    assert "drift-flag" not in html
    services.target_reconciled(
        target_id=lab.pk,
        findings=[
            {
                "key": f"missing:{deployment.service}:",
                "kind": "missing",
                "service": deployment.service,
                "message": "gone",
            }
        ],
    )
    assert "drift-flag" in page(logged_in(viewer), "/")


# ---------------------------------------------------------------------------------------------
# Query counts: flat as rows grow


def _serving_models(count, *, author, approve, start, team):
    """``count`` more models, each with a version approved for staging and serving on ``lab``."""
    from apps.registry.choices import RiskTier
    from tests.factories.registry import RegisteredModelFactory

    for _ in range(count):
        name = f"model-{Deployment.objects.count():02d}"
        model = RegisteredModelFactory(name=name, owner_team=team, risk_tier=RiskTier.MINIMAL, data_categories=[])
        serving(start(approve(stored_version(model, author, 1, f"bytes of {name}".encode()))))


@pytest.mark.parametrize("path", ["/deployments/", "/", "/targets/"])
def test_the_lists_query_counts_do_not_grow_with_rows(
    path, lab, admin, author, approve, start, team, django_assert_max_num_queries
):
    # given one deployment (of one model) and the queries its page needs
    web = logged_in(admin)
    _serving_models(1, author=author, approve=approve, start=start, team=team)
    with CaptureQueriesContext(connection) as small:
        assert web.get(path).status_code == 200
    # when there are five, and five targets
    _serving_models(4, author=author, approve=approve, start=start, team=team)
    for i in range(4):
        services.target_create(actor=who(admin), name=f"extra-{i}", kind="local", environment="staging")
    # then the page needs no more queries
    with django_assert_max_num_queries(len(small)):
        response = web.get(path)
    html = response.content.decode()
    assert response.status_code == 200
    assert "extra-3" in html if path == "/targets/" else all(f"model-{n:02d}" in html for n in range(5))


def test_running_where_reads_a_split_without_a_stable_share(lab, release, start, approve, version2, viewer):
    # given v1 serving and a direct rollout of v2 that put all live traffic on v2 ("stable": None)
    serving(start(release))
    progressing(start(approve(version2)), traffic={"new": 100, "stable": None})
    # then the model page reads v1 at 0 % and v2 at 100 %
    html = page(logged_in(viewer), "/models/churn/")
    rows = html.split('id="running-where-table"')[1].split("</table>")[0]
    assert rows.count('data-target="lab"') == 2 and "0 %" in rows and "100 %" in rows
    html = page(logged_in(viewer), f"/deployments/{Deployment.objects.get(version=version2).public_id}/")
    assert 'data-member="stable"' not in html and 'data-member="new"' in html


def test_the_person_who_stopped_it_is_named_from_the_trail(canary, manager):
    # given the release manager, with a full name, halting the rollout (the row keeps only the username)
    manager.first_name, manager.last_name = "Max", "Power"
    manager.save(update_fields=["first_name", "last_name"])
    services.deployment_halt(actor=who(manager), deployment_id=canary.public_id, reason="look")
    # then the page names them by the halt's audit event: full name and username
    html = page(logged_in(manager), f"/deployments/{canary.public_id}/")
    assert "by Max Power (max): “look”" in html
