"""The audit trail's "related to" filter (``apps.audit.related``): everything about a model, a version, a release,
a deployment, a person or a token, found across the apps that hold its parts. It lives with the deployment
tests because their fixtures make every part: a model, versions, approved releases with their approvals,
deployments and the jobs that ran them. Real services and the real database throughout."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test import Client

from apps.audit import services as audit
from apps.audit.chain import seal_pending
from apps.audit.models import AuditEvent
from apps.rbac import services as rbac
from apps.registry.choices import RiskTier
from tests.deployments.conftest import stored_version, who
from tests.factories.registry import RegisteredModelFactory
from tests.releases.conftest import add_evidence

pytestmark = pytest.mark.django_db
EVENTS = "/api/v1/audit/events/"


@pytest.fixture
def auditor_api(make_user, api_client_for):
    return api_client_for(make_user("auditor", username="alex-auditor"))


@pytest.fixture
def story(lab, release, start, approve, version2, manager, author, team):
    """churn v1 released and deployed; v2 approved; an evidence run on v1 whose finding a person reviewed; and,
    beside them, another model (fraud) released and deployed on the same target, which is no part of churn's."""
    deployment = start(release)
    later = approve(version2)
    run = add_evidence(release.version)
    with transaction.atomic():
        audit.record(action="evidence.finding_reviewed", target=run, actor=who(manager), reason="checked")
    fraud = RegisteredModelFactory(name="fraud", owner_team=team, risk_tier=RiskTier.MINIMAL, data_categories=[])
    fraud_release = approve(stored_version(fraud, author, 1, b"onnx bytes of fraud v1"))
    fraud_deployment = start(fraud_release)
    return {
        "deployment": deployment,
        "later": later,
        "run": run,
        "fraud_release": fraud_release,
        "fraud_deployment": fraud_deployment,
    }


def _events(client, **params) -> list[dict]:
    response = client.get(EVENTS, {**params, "page_size": 200})
    assert response.status_code == 200, response.content
    return response.json()["results"]


def _about(events: list[dict]) -> set[tuple[str, str]]:
    return {(e["target_type"], e["target_id"]) for e in events} | {
        (e["related_type"], e["related_id"]) for e in events if e["related_type"]
    }


def test_a_models_story_holds_its_versions_evidence_releases_approvals_deployments_and_jobs(
    auditor_api, story, release
):
    # when an auditor asks for everything about churn, by the name they know
    events = _events(auditor_api, related="model:churn")
    about = _about(events)
    # then its gate decisions, releases and their approvals, the evidence review, the deployment and the jobs
    # that worked on them are there
    actions = {e["action"] for e in events}
    assert {"release.requested", "release.approved", "deployment.started", "evidence.finding_reviewed"} <= actions
    assert ("release", str(release.public_id)) in about and ("release", str(story["later"].public_id)) in about
    assert ("deployment", str(story["deployment"].public_id)) in about
    assert ("evidence_run", str(story["run"].public_id)) in about
    assert any(e["target_type"] == "job" for e in events) and any(
        e["target_type"] == "approval" or e["related_type"] == "approval" for e in events
    )
    # and nothing of fraud's
    assert ("release", str(story["fraud_release"].public_id)) not in about
    assert ("deployment", str(story["fraud_deployment"].public_id)) not in about
    assert not [e for e in events if "fraud" in e["target_name"]]
    # the count is every event that names one of churn's parts, as the database holds them
    fraud_only = AuditEvent.objects.filter(target_name__contains="fraud").count()
    assert fraud_only and len(events) < AuditEvent.objects.count() - fraud_only


def test_a_release_a_version_and_a_deployment_each_have_their_own_story(auditor_api, story, release, version2):
    deployment = story["deployment"]
    of_release = _about(_events(auditor_api, related=f"release:{release.public_id}"))
    assert ("deployment", str(deployment.public_id)) in of_release
    assert ("release", str(story["later"].public_id)) not in of_release
    of_version = _about(_events(auditor_api, related=f"version:churn:{version2.number}"))
    assert ("release", str(story["later"].public_id)) in of_version and (
        "release",
        str(release.public_id),
    ) not in of_version
    of_deployment = _events(auditor_api, related=f"deployment:{deployment.public_id}")
    assert {e["action"] for e in of_deployment} >= {"deployment.started"}
    assert all(str(deployment.public_id) in (e["target_id"], e["related_id"]) for e in of_deployment)


def test_a_persons_and_a_tokens_story_is_what_they_did(auditor_api, story, manager, make_user, api_client_for):
    done = _events(auditor_api, related=f"person:{manager.username}")
    assert {e["action"] for e in done} >= {"deployment.started", "evidence.finding_reviewed"}
    mine = ("user", str(manager.pk))
    assert all(
        manager.username == e["actor_name"]
        or mine in {(e["target_type"], e["target_id"]), (e["related_type"], e["related_id"])}
        for e in done
    )
    # a token's: the calls made with it, a refused one included
    client = api_client_for(make_user("compliance_officer", username="olga"))
    path = f"/api/v1/deployments/{story['deployment'].public_id}/resume/"
    assert client.post(path, {"reason": "x"}, format="json").status_code == 403
    refused = AuditEvent.objects.filter(action="deployment.resumed", outcome="denied").latest("id")
    by_token = _events(auditor_api, related=f"token:{refused.token_id}")
    assert refused.token_id and [e["action"] for e in by_token if e["outcome"] == "denied"] == ["deployment.resumed"]
    assert all(e["token_id"] == refused.token_id or e["target_id"] == refused.token_id for e in by_token)


def test_an_unknown_or_malformed_subject_is_a_400_naming_it_and_a_viewer_learns_nothing(
    auditor_api, story, make_user, api_client_for
):
    missing = auditor_api.get(EVENTS, {"related": "model:no-such-model"})
    assert missing.status_code == 400 and "no model 'no-such-model' is known" in missing.json()["detail"]
    not_an_id = auditor_api.get(EVENTS, {"related": "release:not-an-id"})
    assert not_an_id.status_code == 400 and "no release 'not-an-id' is known" in not_an_id.json()["detail"]
    malformed = auditor_api.get(EVENTS, {"related": "churn"})
    assert malformed.status_code == 400 and "related" in malformed.json()["errors"]
    # someone without the trail gets the same 403 whether or not the subject exists
    viewer = api_client_for(make_user("viewer", username="vic"))
    assert viewer.get(EVENTS, {"related": "model:churn"}).status_code == 403
    assert viewer.get(EVENTS, {"related": "model:no-such-model"}).status_code == 403


def test_the_audit_page_and_its_export_take_the_subject(story, make_user):
    web = Client()
    web.force_login(make_user("auditor", username="alex-auditor"))
    html = web.get("/audit/", {"related": "model:churn"}).content.decode()
    assert 'value="model:churn"' in html and "deployment.started" in html and "fraud" not in html
    assert "related=model%3Achurn" in html  # the export buttons keep the filter
    unknown = web.get("/audit/", {"related": "model:nope"}).content.decode()
    assert "no model &#x27;nope&#x27; is known" in unknown
    seal_pending(blocking=True)  # the periodic seal task: an export holds the sealed chain
    response = web.get("/audit/export.jsonl", {"related": "model:churn"})
    assert response.status_code == 200, response.content[:300]
    exported = b"".join(response.streaming_content).decode()
    assert exported and "fraud" not in exported and "deployment.started" in exported


def test_the_model_version_release_deployment_and_evidence_pages_link_to_their_history(story, release, make_user):
    auditor, officer_without_trail = Client(), Client()
    auditor.force_login(make_user("auditor", username="alex-auditor"))
    officer_without_trail.force_login(make_user("release_manager", username="rita"))
    pages = {
        "/models/churn/": "related=model:churn",
        "/models/churn/versions/1/": "related=version:churn:1",
        f"/releases/{release.public_id}/": f"related=release:{release.public_id}",
        f"/deployments/{story['deployment'].public_id}/": f"related=deployment:{story['deployment'].public_id}",
        f"/evidence/{story['run'].public_id}/": f"target=evidence_run:{story['run'].public_id}",
    }
    for path, query in pages.items():
        html = auditor.get(path).content.decode()
        assert f'href="/audit/?{query}"' in html, path
        # the link leads to the story: at least one event, and no error
        followed = auditor.get(f"/audit/?{query}")
        assert followed.status_code == 200 and "No events match" not in followed.content.decode(), path
        # someone who may not read the trail is not shown the link
        assert 'id="history-link"' not in officer_without_trail.get(path).content.decode(), path


def test_a_teams_story_holds_its_models_members_and_bindings_and_nothing_of_another_team(
    auditor_api, story, release, team, other_team, make_user, system
):
    from apps.accounts import services as accounts

    # given: a member joins the team, a role is bound on it, and another team has a model of its own
    member = make_user(username="newcomer")
    with transaction.atomic():
        accounts.team_member_add(actor=system, team=team, user=member)
    binding = rbac.role_grant(actor=system, subject=member, role="viewer", team=team)
    other = RegisteredModelFactory(name="marketing-mix", owner_team=other_team, data_categories=[])
    with transaction.atomic():
        audit.record(action="model.updated", target=other, actor=system, after={"x": 1})
    # when an auditor asks for everything about the team
    events = _events(auditor_api, related=f"team:{team.name}")
    about = _about(events)
    # then both of its models' stories are there, its member joining and the binding on it
    assert ("release", str(release.public_id)) in about and ("release", str(story["fraud_release"].public_id)) in about
    assert ("deployment", str(story["fraud_deployment"].public_id)) in about
    assert {"team.member_added", "role_binding.created"} <= {e["action"] for e in events}
    assert ("role_binding", str(binding.pk)) in about
    # and nothing of the other team's model
    assert ("model", str(other.pk)) not in about
