"""Deployments API: real HTTP requests through Django's test client with bearer tokens, against the test
database; what each call answers, what it wrote, and what the lists cost in queries."""

from __future__ import annotations

import pytest

from apps.core.errors import PROBLEM_JSON
from apps.deployments.choices import DeploymentState
from apps.deployments.models import Deployment, DeploymentTarget
from tests.deployments.conftest import stored_version

pytestmark = pytest.mark.django_db

TOKEN = "sa-secret-that-must-never-show"  # noqa: S105 - a test credential


@pytest.fixture
def admin_api(api_client_for, admin):
    return api_client_for(admin)


@pytest.fixture
def manager_api(api_client_for, manager):
    return api_client_for(manager)


def test_an_admin_creates_a_target_and_never_reads_its_credentials_back(admin_api, staging, audit_mark):
    mark = audit_mark()
    body = {
        "name": "aws-eu",
        "kind": "sagemaker",
        "environment": "staging",
        "settings": {"region": "eu-west-1", "instance_type": "ml.g5.xlarge", "instance_count": 1},
        "credentials": {"access_key_id": "AKIATEST", "secret_access_key": TOKEN},
    }
    response = admin_api.post("/api/v1/targets/", body, format="json")
    assert response.status_code == 201, response.json()
    target = response.json()
    assert response["Location"].endswith(f"/api/v1/targets/{target['id']}/")
    assert target["credentials_set"] is True and target["credentials_fingerprint"].startswith("sha256:")
    assert "credentials" not in target and TOKEN not in response.content.decode()
    # reading it back, listing it, and the audit trail never hold the secret
    assert TOKEN not in admin_api.get(f"/api/v1/targets/{target['id']}/").content.decode()
    assert TOKEN not in admin_api.get("/api/v1/targets/").content.decode()
    assert mark.actions() == ["deployment_target.created"] and TOKEN not in str(mark.new()[0].after)
    # a PATCH that names no credentials keeps them; an unknown field is refused by name
    kept = admin_api.patch(f"/api/v1/targets/{target['id']}/", {"enabled": False}, format="json")
    assert kept.status_code == 200 and kept.json()["credentials_fingerprint"] == target["credentials_fingerprint"]
    refused = admin_api.patch(f"/api/v1/targets/{target['id']}/", {"kind": "local"}, format="json")
    assert refused.status_code == 400 and refused.json()["read_only_fields"] == ["kind"]


def test_a_bad_setting_is_a_problem_listing_the_valid_keys(admin_api, staging):
    response = admin_api.post(
        "/api/v1/targets/",
        {"name": "lab", "kind": "local", "environment": "staging", "settings": {"prot": 1}},
        format="json",
    )
    assert response.status_code == 400 and response["Content-Type"] == PROBLEM_JSON
    problem = response.json()
    assert "settings.prot" in problem["errors"] and "router_port" in problem["valid_values"]["settings"]
    assert not DeploymentTarget.objects.exists()


def test_deploying_answers_202_with_the_deployment_s_url(manager_api, lab, release, version):
    response = manager_api.post(
        f"/api/v1/releases/{release.public_id}/deploy/",
        {
            "target": "lab",
            "strategy": "canary",
            "steps": [{"weight": 20, "analysis": 30}, {"weight": 60, "pause": None}],
        },
        format="json",
    )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert response["Location"] == body["url"] and body["url"].endswith(f"/api/v1/deployments/{body['id']}/")
    assert body["state"] == "pending" and body["digest"] == version.sha256 and body["target"] == "lab"
    assert body["steps"] == [{"weight": 20, "pause": 0, "analysis": 30}, {"weight": 60, "pause": None, "analysis": 0}]
    assert body["timeline"] == [] and body["traffic"] == {} and body["stable"] is None


def test_deploy_errors_list_the_valid_values(manager_api, lab, release):
    url = f"/api/v1/releases/{release.public_id}/deploy/"
    unknown = manager_api.post(url, {"target": "nowhere"}, format="json")
    assert unknown.status_code == 400 and unknown.json()["valid_values"] == {"target": ["lab"]}
    strategy = manager_api.post(url, {"target": "lab", "strategy": "linear"}, format="json")
    assert strategy.status_code == 400 and "canary" in str(strategy.json())
    assert not Deployment.objects.exists()


def test_an_unapproved_release_is_a_409_naming_why(manager_api, lab, request_release, requester, version, audit_mark):
    pending = request_release(requester, version)
    mark = audit_mark()
    response = manager_api.post(f"/api/v1/releases/{pending.public_id}/deploy/", {"target": "lab"}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "governance_refused"
    assert "pending approval" in response.json()["detail"]
    assert "deployment.refused" in mark.actions()


def test_halt_then_resume_and_the_reason_is_required(manager_api, lab, release, start, audit_mark):
    deployment = start(release)
    url = f"/api/v1/deployments/{deployment.public_id}/"
    missing = manager_api.post(url + "halt/", {"reason": ""}, format="json")
    assert missing.status_code == 400 and "reason" in missing.json()["errors"]
    mark = audit_mark()
    halted = manager_api.post(url + "halt/", {"reason": "latency spike"}, format="json")
    assert halted.status_code == 202 and halted.json()["state"] == "halted" and halted["Location"].endswith(url)
    assert halted.json()["stop_reason"] == "latency spike"
    unsaid = manager_api.post(url + "resume/", {}, format="json")  # a resume is audited with its reason too
    assert unsaid.status_code == 400 and "reason" in unsaid.json()["errors"]
    resumed = manager_api.post(url + "resume/", {"reason": "cause found"}, format="json")
    assert resumed.status_code == 202 and resumed.json()["state"] == "progressing"
    again = manager_api.post(url + "resume/", {"reason": "once more"}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "invalid_transition"
    assert [a for a in mark.actions() if a.startswith("deployment.")] == ["deployment.halted", "deployment.resumed"]


def test_rollback_and_undeploy(manager_api, lab, release, start):
    deployment = start(release)
    url = f"/api/v1/deployments/{deployment.public_id}/"
    rolled = manager_api.post(url + "rollback/", {"reason": "wrong build"}, format="json")
    assert rolled.status_code == 202 and rolled.json()["state"] == "rolled_back"
    refused = manager_api.post(url + "undeploy/", {"reason": "done"}, format="json")
    assert refused.status_code == 409 and "only a serving one" in refused.json()["detail"]


def test_the_list_filters_and_refuses_unknown_values(api_client_for, viewer, lab, release, start):
    deployment = start(release)
    api = api_client_for(viewer)
    assert [d["id"] for d in api.get("/api/v1/deployments/").json()["results"]] == [str(deployment.public_id)]
    for query in ("model=churn", "target=lab", "state=pending", "environment=staging"):
        assert api.get(f"/api/v1/deployments/?{query}").json()["count"] == 1, query
    assert api.get("/api/v1/deployments/?state=succeeded").json()["count"] == 0
    bad_state = api.get("/api/v1/deployments/?state=shipped")
    assert bad_state.status_code == 400 and "rolled_back" in bad_state.json()["detail"]
    bad_target = api.get("/api/v1/deployments/?target=nowhere")
    assert bad_target.status_code == 400 and bad_target.json()["valid_values"] == {"target": ["lab"]}
    by_model = api.get("/api/v1/models/churn/deployments/")
    assert by_model.status_code == 200 and by_model.json()["count"] == 1
    assert api.get("/api/v1/models/nothing/deployments/").status_code == 404


def test_the_lists_cost_the_same_for_one_deployment_or_many(
    api_client_for, viewer, admin, approve, start, model, author
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.deployments import services
    from tests.deployments.conftest import who

    def rollout(n: int) -> None:
        services.target_create(actor=who(admin), name=f"lab-{n}", kind="local", environment="staging")
        start(approve(stored_version(model, author, 10 + n, f"bytes {n}".encode())), target=f"lab-{n}")

    def cost(path: str) -> tuple[int, dict]:
        with CaptureQueriesContext(connection) as queries:
            response = api.get(path)
        assert response.status_code == 200, response.content
        return len(queries.captured_queries), response.json()

    api = api_client_for(viewer)
    rollout(0)
    api.get("/api/v1/deployments/")  # the token's first use is recorded once
    one = {path: cost(path) for path in ("/api/v1/deployments/", "/api/v1/models/churn/deployments/")}
    detail_one = cost(one["/api/v1/deployments/"][1]["results"][0]["url"])[0]
    # given five more rollouts, each with its own target, release and version
    for n in range(1, 6):
        rollout(n)
    # then each list answers all six in the same number of queries as one, and a detail as before
    for path, (queries, _) in one.items():
        again, body = cost(path)
        assert body["count"] == 6 and again == queries, (path, queries, again)
    assert one["/api/v1/deployments/"][0] <= 4 and one["/api/v1/models/churn/deployments/"][0] <= 5
    newest = cost("/api/v1/deployments/")[1]["results"][0]["url"]
    assert cost(newest)[0] == detail_one <= 4


def test_a_viewer_of_another_team_sees_none_of_it(api_client_for, make_user, other_team, lab, release, start):
    deployment = start(release)
    stranger = api_client_for(make_user("viewer", team=other_team))
    assert stranger.get("/api/v1/deployments/").json()["count"] == 0
    assert stranger.get(f"/api/v1/deployments/{deployment.public_id}/").status_code == 404
    halt = stranger.post(f"/api/v1/deployments/{deployment.public_id}/halt/", {"reason": "x"}, format="json")
    assert halt.status_code == 404
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.PENDING
