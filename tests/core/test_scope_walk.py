"""Nobody sees what is not theirs: a team's people walk every page and endpoint and find no other team's names.

Two teams own everything a team can own, each named with its own word ("aardvark" for team A,
"zebrafish" for team B): models, versions, datasets (one derived from the other team's), packs
bound to their models, webhooks and their deliveries, releases, evidence runs, and the audit
events their creation wrote. Lineage crosses the teams on purpose: A's version was trained on
B's dataset, B's version on A's, and each team derived a dataset from the other's.

A viewer of team A, and a compliance officer of team A (who also sees the team's webhooks and
its approval queue), request every GET route of the API and the dashboard, read from the URL
conf: routes with parameters once with team A's objects and once with team B's. No body may
hold a team-B name, digest or id, and each of B's objects is a 404. A route the walk cannot
fill fails the test, so a new route cannot be added without being walked.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from apps.accounts.principals import principal_for_user
from apps.core.storage import get_storage
from apps.evidence.models import EvidenceFile
from apps.notifications import services as notifications
from apps.policies import services as policies
from apps.registry import services as registry
from apps.registry.models import RegisteredModel
from apps.releases import services as releases
from apps.releases.models import Environment
from tests.factories.accounts import TeamFactory
from tests.factories.policies import bias_run, bias_summary, compliant_version, evidence_run, pii_run
from tests.factories.registry import DatasetFactory
from tests.policies.test_api import GOOD

pytestmark = pytest.mark.django_db


@dataclass
class Side:
    """One team's objects, and the strings that must not be seen from the other team."""

    tag: str
    team: object = None
    model: object = None
    version: object = None
    dataset: object = None
    derived: object = None
    release: object = None
    run: object = None
    pii_run: object = None
    cross_run: object = None
    webhook: object = None
    delivery: object = None
    facts_change: object = None
    author: object = None
    deployment: object = None
    secrets: set[str] = field(default_factory=set)


def _side(tag: str, admin, make_user) -> Side:
    side = Side(tag)
    side.team = TeamFactory(name=f"{tag}-team")
    side.author = make_user("contributor", username=f"{tag}-author", team=side.team)
    registry.model_create(
        actor=admin,
        name=f"{tag}-model",
        owner_team=side.team,
        description=f"{tag} model description",
        intended_use="Pre-screening of consumer loan applications",
        limitations="Not validated for business loans",
        risk_tier="minimal",
    )
    side.model = RegisteredModel.objects.get(name=f"{tag}-model")
    digest = {"aardvark": "a1", "zebrafish": "b2"}[tag]
    side.version = compliant_version(
        side.model, number=1, created_by=side.author, sha256=(digest + "c0ffee") * 8, evidence=True
    )
    side.dataset = DatasetFactory(
        name=f"{tag}-data", owner_team=side.team, status="ready", sha256=(digest + "da7a5e") * 8
    )
    side.run = bias_run(side.version)
    side.pii_run = pii_run(side.dataset, findings=[("email", "EMAIL_ADDRESS", "j***@e******.org")])
    stored = get_storage().save(io.BytesIO(b"column,entity_type\nemail,EMAIL_ADDRESS\n"), kind="evidence")
    EvidenceFile.objects.create(
        run=side.pii_run,
        name="findings.csv",
        title="Findings",
        content_type="text/csv",
        key=stored.key,
        size=stored.size,
        sha256=stored.sha256,
    )
    # a loosening change of the model's facts, waiting for a compliance officer
    side.facts_change = registry.model_update(
        actor=principal_for_user(side.author),
        name=side.model.name,
        changes={"intended_use": f"{tag} wider use"},
        reason=f"{tag} widens the use",
    ).facts_change
    return side


def _secrets(side: Side) -> set[str]:
    found = {side.tag, side.team.name, side.model.name, side.dataset.name, side.derived.name, side.author.username}
    found |= {side.version.sha256, side.dataset.sha256, side.derived.sha256}
    found |= {str(side.release.public_id), str(side.run.public_id), str(side.pii_run.public_id)}
    found |= {str(side.webhook.public_id), str(side.delivery.public_id), str(side.cross_run.public_id)}
    found |= {str(side.facts_change.public_id), f"{side.tag} wider use"}
    found |= {d.sha256 for d in side.version.training_datasets.all() if side.tag in d.name}
    found |= {str(side.deployment.public_id), str(side.deployment.release.public_id)}
    return {s for s in found if s}


@pytest.fixture
def world(make_user, system):
    admin = principal_for_user(make_user("admin", username="root-admin"))
    Environment.objects.get_or_create(name="staging", defaults={"production": False})
    notifications.allowed_host_create(actor=admin, host="127.0.0.1", allow_http=True)
    policies.policy_pack_create(actor=admin, name="loan-limits", source=GOOD)
    a, b = _side("aardvark", admin, make_user), _side("zebrafish", admin, make_user)
    for mine, theirs in ((a, b), (b, a)):
        # lineage across the teams: my version was trained on their dataset, my dataset derives from theirs
        mine.version.training_datasets.add(theirs.dataset)
        mine.derived = DatasetFactory(
            name=f"{mine.tag}-derived",
            owner_team=mine.team,
            status="ready",
            source=theirs.dataset,
            sha256=mine.dataset.sha256[::-1],
        )
        # an evidence run of my version on their dataset
        mine.cross_run = evidence_run(kind="bias", summary=bias_summary(), version=mine.version, dataset=theirs.dataset)
        mine.cross_run.input_digests = {"dataset": theirs.dataset.sha256, "model_version": mine.version.sha256}
        mine.cross_run.save(update_fields=["input_digests"])
        policies.policy_binding_create(actor=admin, pack_name="loan-limits", model=mine.model)
        policies.policy_binding_create(actor=admin, pack_name="loan-limits", team=mine.team, environment="staging")
        mine.webhook, _ = notifications.webhook_create(
            actor=admin, team=mine.team, url=f"http://127.0.0.1:9/{mine.tag}-hook", events=["release.requested"]
        )
        mine.delivery = notifications.webhook_ping(actor=admin, webhook_id=mine.webhook.public_id)
        mine.release = releases.release_request_create(
            actor=principal_for_user(mine.author),
            model_name=mine.model.name,
            number=1,
            environment="staging",
            justification=f"{mine.tag} release",
        )
    # each team's version deployed (break-glass, to production) to the one shared local target
    from apps.deployments import services as deployments

    manager = principal_for_user(make_user("release_manager", username="walk-manager"))
    Environment.objects.get_or_create(name="production", defaults={"production": True})
    deployments.target_create(actor=admin, name="prod-lab", kind="local", environment="production")
    for side in (a, b):
        emergency = releases.release_request_create(
            actor=manager,
            model_name=side.model.name,
            number=1,
            environment="production",
            justification=f"{side.tag} outage",
            change_reference="CHG-1",
            emergency=True,
        )
        side.deployment = deployments.deployment_start(actor=manager, release_id=emergency.public_id, target="prod-lab")
    for side in (a, b):
        side.secrets = _secrets(side)
    return a, b


# ---------------------------------------------------------------------------------------------
# Every route of the URL conf, and how the walk fills its parameters with a side's objects.
# ``None`` for team B: the route names nothing a team owns (packs are global), so it is walked once.


def _version(s: Side) -> dict:
    return {"name": s.model.name, "number": s.version.number}


def _run(s: Side) -> list[dict]:
    return [{"run_id": s.pii_run.public_id}, {"run_id": s.cross_run.public_id}]


Fill = Callable[[Side], dict | list[dict]]
BOTH = "both"  # filled with each side's objects
ONCE = "once"  # no team's object in its parameters

ROUTES: dict[str, tuple[str, Fill]] = {
    # API
    "api:health": (ONCE, lambda s: {}),
    "api:schema": (ONCE, lambda s: {}),
    "api:docs": (ONCE, lambda s: {}),
    "api:token-list": (ONCE, lambda s: {}),
    "api:token-revoke": (ONCE, lambda s: {"token_id": "nope"}),
    "api:accounts-user-list": (ONCE, lambda s: {}),
    "api:accounts-user-detail": (BOTH, lambda s: {"username": s.author.username}),
    "api:accounts-team-list": (ONCE, lambda s: {}),
    "api:accounts-team-detail": (BOTH, lambda s: {"name": s.team.name}),
    "api:accounts-team-members": (BOTH, lambda s: {"name": s.team.name}),
    "api:accounts-team-member": (BOTH, lambda s: {"name": s.team.name, "username": s.author.username}),
    "api:accounts-service-account-list": (ONCE, lambda s: {}),
    "api:accounts-role-binding-list": (ONCE, lambda s: {}),
    "api:accounts-role-binding-detail": (ONCE, lambda s: {"binding_id": 1}),
    "api:registry-model-list": (ONCE, lambda s: {}),
    "api:registry-model-detail": (BOTH, lambda s: {"name": s.model.name}),
    "api:registry-version-list": (BOTH, lambda s: {"name": s.model.name}),
    "api:registry-version-detail": (BOTH, _version),
    "api:registry-version-retire": (BOTH, _version),
    "api:registry-version-verify": (BOTH, _version),
    "api:registry-dataset-list": (ONCE, lambda s: {}),
    "api:registry-facts-change-list": (ONCE, lambda s: {}),
    "api:registry-facts-change-detail": (BOTH, lambda s: {"change_id": s.facts_change.public_id}),
    "api:registry-facts-change-approve": (BOTH, lambda s: {"change_id": s.facts_change.public_id}),
    "api:registry-facts-change-reject": (BOTH, lambda s: {"change_id": s.facts_change.public_id}),
    "api:registry-facts-change-cancel": (BOTH, lambda s: {"change_id": s.facts_change.public_id}),
    "api:registry-dataset-detail": (BOTH, lambda s: [{"dataset_id": s.dataset.pk}, {"dataset_id": s.derived.pk}]),
    "api:registry-dataset-verify": (BOTH, lambda s: {"dataset_id": s.dataset.pk}),
    "api:registry-version-artifact-download": (BOTH, _version),
    "api:registry-dataset-download": (BOTH, lambda s: {"dataset_id": s.dataset.pk}),
    # a link names the one person it was issued to: the walkers' own links are tested in tests/registry
    "api:registry-download": (ONCE, lambda s: {"token": "not-a-link"}),
    "api:evidence-version-list": (BOTH, _version),
    "api:evidence-dataset-list": (BOTH, lambda s: {"dataset_id": s.dataset.pk}),
    "api:evidence-run-detail": (BOTH, _run),
    "api:evidence-run-cancel": (BOTH, _run),
    "api:evidence-run-reviews": (BOTH, _run),
    "api:evidence-file-download": (BOTH, lambda s: {"run_id": s.pii_run.public_id, "name": "findings.csv"}),
    "api:policies-list": (ONCE, lambda s: {}),
    "api:policies-dry-run": (ONCE, lambda s: {}),
    "api:policies-binding-detail": (ONCE, lambda s: {"binding_id": 1}),
    "api:policies-detail": (ONCE, lambda s: {"name": "loan-limits"}),
    "api:policies-versions": (ONCE, lambda s: {"name": "loan-limits"}),
    "api:policies-version": (ONCE, lambda s: {"name": "loan-limits", "number": 1}),
    "api:policies-bindings": (ONCE, lambda s: {"name": "loan-limits"}),
    "api:policies-version-decision": (BOTH, lambda s: {**_version(s), "?": "environment=staging"}),
    "api:environment-list": (ONCE, lambda s: {}),
    "api:release-list": (ONCE, lambda s: {}),
    "api:release-detail": (BOTH, lambda s: {"release_id": s.release.public_id}),
    "api:release-approvals": (BOTH, lambda s: {"release_id": s.release.public_id}),
    "api:release-cancel": (BOTH, lambda s: {"release_id": s.release.public_id}),
    "api:release-review-close": (BOTH, lambda s: {"release_id": s.release.public_id}),
    "api:version-gate": (BOTH, lambda s: {**_version(s), "?": "environment=staging"}),
    "api:target-list": (ONCE, lambda s: {}),
    "api:target-detail": (ONCE, lambda s: {"target_id": "00000000-0000-4000-8000-000000000000"}),
    "api:release-deploy": (BOTH, lambda s: {"release_id": s.deployment.release.public_id}),
    "api:deployment-list": (ONCE, lambda s: {}),
    "api:deployment-detail": (BOTH, lambda s: {"deployment_id": s.deployment.public_id}),
    "api:deployment-halt": (BOTH, lambda s: {"deployment_id": s.deployment.public_id}),
    "api:deployment-resume": (BOTH, lambda s: {"deployment_id": s.deployment.public_id}),
    "api:deployment-rollback": (BOTH, lambda s: {"deployment_id": s.deployment.public_id}),
    "api:deployment-undeploy": (BOTH, lambda s: {"deployment_id": s.deployment.public_id}),
    "api:model-deployments": (BOTH, lambda s: {"name": s.model.name}),
    "api:team-webhooks": (BOTH, lambda s: {"name": s.team.name}),
    "api:webhook-detail": (BOTH, lambda s: {"webhook_id": s.webhook.public_id}),
    "api:webhook-rotate": (BOTH, lambda s: {"webhook_id": s.webhook.public_id}),
    "api:webhook-test": (BOTH, lambda s: {"webhook_id": s.webhook.public_id}),
    "api:webhook-deliveries": (BOTH, lambda s: {"webhook_id": s.webhook.public_id}),
    "api:webhook-redeliver": (
        BOTH,
        lambda s: {"webhook_id": s.webhook.public_id, "delivery_id": s.delivery.public_id},
    ),
    "api:webhook-allowed-hosts": (ONCE, lambda s: {}),
    "api:webhook-allowed-host": (ONCE, lambda s: {"host_id": 1}),
    "api:audit-events": (ONCE, lambda s: {}),
    "api:audit-export": (ONCE, lambda s: {}),
    "api:audit-verify": (ONCE, lambda s: {}),
    "api:audit-checkpoint": (ONCE, lambda s: {}),
    "api:audit-proof-consistency": (ONCE, lambda s: {}),
    "api:audit-proof-inclusion": (ONCE, lambda s: {}),
    "api:reports": (ONCE, lambda s: {}),
    "api:report-certificate": (ONCE, lambda s: {}),
    "api:report-detail": (ONCE, lambda s: {"report_id": "00000000-0000-4000-8000-000000000000"}),
    "api:report-download": (ONCE, lambda s: {"report_id": "00000000-0000-4000-8000-000000000000", "fmt": "pdf"}),
    "api:report-file": (ONCE, lambda s: {"token": "not-a-link"}),
    # dashboard
    "accounts:login": (ONCE, lambda s: {}),
    "accounts:tokens": (ONCE, lambda s: {}),
    "accounts:token_revoke": (ONCE, lambda s: {"token_id": "nope"}),
    "accounts:access": (ONCE, lambda s: {}),
    "accounts:access_user_create": (ONCE, lambda s: {}),
    "accounts:access_user_active": (BOTH, lambda s: {"username": s.author.username}),
    "accounts:access_team_create": (ONCE, lambda s: {}),
    "accounts:access_member_add": (ONCE, lambda s: {}),
    "accounts:access_member_remove": (BOTH, lambda s: {"name": s.team.name, "username": s.author.username}),
    "accounts:access_service_account_create": (ONCE, lambda s: {}),
    "accounts:access_role_grant": (ONCE, lambda s: {}),
    "accounts:access_role_revoke": (ONCE, lambda s: {"binding_id": 1}),
    "registry:model_list": (ONCE, lambda s: {}),
    "registry:model_detail": (BOTH, lambda s: {"name": s.model.name}),
    "registry:version_detail": (BOTH, _version),
    "registry:dataset_list": (ONCE, lambda s: {}),
    "registry:facts_change_decide": (
        BOTH,
        lambda s: {"name": s.model.name, "change_id": s.facts_change.public_id, "command": "approve"},
    ),
    "registry:version_verify": (BOTH, _version),
    "registry:dataset_detail": (BOTH, lambda s: [{"dataset_id": s.dataset.pk}, {"dataset_id": s.derived.pk}]),
    "registry:dataset_verify": (BOTH, lambda s: {"dataset_id": s.dataset.pk}),
    "registry:version_download": (BOTH, _version),
    "registry:dataset_download": (BOTH, lambda s: {"dataset_id": s.dataset.pk}),
    "reports:report_list": (ONCE, lambda s: {}),
    "reports:report_detail": (ONCE, lambda s: {"report_id": "00000000-0000-4000-8000-000000000000"}),
    "reports:report_download": (ONCE, lambda s: {"report_id": "00000000-0000-4000-8000-000000000000", "fmt": "pdf"}),
    "reports:release_report": (BOTH, lambda s: {"release_id": s.release.public_id}),
    "reports:model_report": (BOTH, lambda s: {"name": s.model.name}),
    "reports:period_report": (ONCE, lambda s: {}),
    "reports:review_list": (ONCE, lambda s: {}),
    "reports:schedule_create": (ONCE, lambda s: {}),
    "reports:trail_report": (ONCE, lambda s: {}),
    "reports:schedule_delete": (ONCE, lambda s: {"schedule_id": "00000000-0000-4000-8000-000000000000"}),
    "api:report-schedules": (ONCE, lambda s: {}),
    "api:report-schedule": (ONCE, lambda s: {"schedule_id": "00000000-0000-4000-8000-000000000000"}),
    "reports:review_start": (ONCE, lambda s: {}),
    "reports:review_detail": (ONCE, lambda s: {"review_id": "00000000-0000-4000-8000-000000000000"}),
    "reports:review_decide": (ONCE, lambda s: {"review_id": "00000000-0000-4000-8000-000000000000", "item_id": 1}),
    "reports:review_close": (ONCE, lambda s: {"review_id": "00000000-0000-4000-8000-000000000000"}),
    "reports:review_report": (ONCE, lambda s: {"review_id": "00000000-0000-4000-8000-000000000000"}),
    "api:access-reviews": (ONCE, lambda s: {}),
    "api:access-review-detail": (ONCE, lambda s: {"review_id": "00000000-0000-4000-8000-000000000000"}),
    "api:access-review-decide": (ONCE, lambda s: {"review_id": "00000000-0000-4000-8000-000000000000", "item_id": 1}),
    "api:access-review-close": (ONCE, lambda s: {"review_id": "00000000-0000-4000-8000-000000000000"}),
    "evidence:run_detail": (BOTH, _run),
    "evidence:run_cancel": (BOTH, _run),
    "evidence:finding_review": (BOTH, _run),
    "evidence:file_download": (BOTH, lambda s: {"run_id": s.pii_run.public_id, "name": "findings.csv"}),
    "evidence:version_evidence_request": (BOTH, lambda s: {**_version(s), "kind": "bias"}),
    "evidence:dataset_evidence_request": (BOTH, lambda s: {"dataset_id": s.dataset.pk, "kind": "pii_scan"}),
    "policies:pack_list": (ONCE, lambda s: {}),
    "policies:pack_new": (ONCE, lambda s: {}),
    "policies:pack_detail": (ONCE, lambda s: {"name": "loan-limits"}),
    "policies:pack_version_new": (ONCE, lambda s: {"name": "loan-limits"}),
    "policies:binding_new": (ONCE, lambda s: {"name": "loan-limits"}),
    "policies:binding_delete": (ONCE, lambda s: {"name": "loan-limits", "binding_id": 1}),
    "releases:approval_queue": (ONCE, lambda s: {}),
    "releases:release_list": (ONCE, lambda s: {}),
    "releases:release_detail": (BOTH, lambda s: {"release_id": s.release.public_id}),
    "releases:release_decide": (BOTH, lambda s: {"release_id": s.release.public_id}),
    "releases:release_cancel": (BOTH, lambda s: {"release_id": s.release.public_id}),
    "releases:review_close": (BOTH, lambda s: {"release_id": s.release.public_id}),
    "releases:release_request": (BOTH, _version),
    "deployments:target_list": (ONCE, lambda s: {}),
    "deployments:target_edit": (ONCE, lambda s: {"target_id": s.deployment.target.public_id}),
    "deployments:target_delete": (ONCE, lambda s: {"target_id": s.deployment.target.public_id}),
    "deployments:release_deploy": (BOTH, lambda s: {"release_id": s.release.public_id}),
    "deployments:deployment_list": (ONCE, lambda s: {}),
    "deployments:deployment_detail": (
        BOTH,
        lambda s: [
            {"deployment_id": s.deployment.public_id},
            {"deployment_id": s.deployment.public_id, "?": "part=live"},  # the live part the page fetches
        ],
    ),
    "deployments:deployment_command": (BOTH, lambda s: {"deployment_id": s.deployment.public_id, "action": "halt"}),
    "notifications:webhook_list": (ONCE, lambda s: {}),
    "notifications:webhook_create": (BOTH, lambda s: {"team": s.team.name}),
    "notifications:webhook_action": (BOTH, lambda s: {"webhook_id": s.webhook.public_id, "action": "deliveries"}),
    "audit:event_list": (ONCE, lambda s: {}),
    "audit:export": (ONCE, lambda s: {"fmt": "csv"}),
    "audit:verify": (ONCE, lambda s: {}),
}
# Not walked: signing out ends the walk's own session; the API's catch-all answers any other path.
NOT_WALKED = {"accounts:logout", "api:not_found"}


def url_conf_routes() -> dict[str, str]:
    """Every named route of the URL conf: full name -> the pattern, with its namespace."""
    found: dict[str, str] = {}

    def walk(patterns, namespace: str, prefix: str) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                inner = ":".join(filter(None, [namespace, p.namespace]))
                walk(p.url_patterns, inner, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                name = ":".join(filter(None, [namespace, p.name]))
                found[name] = prefix + str(p.pattern)

    walk(get_resolver().url_patterns, "", "/")
    return found


def test_the_walk_covers_every_route_of_the_url_conf():
    # every route is walked (or named as not walked, with the reason above), and the table names no stale route
    routes = set(url_conf_routes())
    assert sorted(routes - set(ROUTES) - NOT_WALKED) == [], "add the new route to ROUTES in this file"
    assert sorted(set(ROUTES) - routes) == []


def _get(client, path: str):
    response = client.get(path)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response.status_code, body.decode(errors="replace")


def _paths(name: str, fill: Fill, side: Side) -> list[str]:
    """The paths of a route filled with a side's objects (a fill may give several, and a query string)."""
    from django.urls import reverse

    filled = fill(side)
    paths = []
    for kwargs in filled if isinstance(filled, list) else [filled]:
        kwargs = dict(kwargs)
        query = kwargs.pop("?", "")
        paths.append(reverse(name, kwargs=kwargs) + (f"?{query}" if query else ""))
    return paths


def _walk(client, a: Side, b: Side, *, api: bool) -> list[str]:
    """Every API route (or every dashboard route), filled with A's objects and B's: the problems found."""
    problems = []
    for name, (kind, fill) in sorted(ROUTES.items()):
        if name.startswith("api:") != api:
            continue
        statuses_a = set()
        for path_a in _paths(name, fill, a):
            status_a, body_a = _get(client, path_a)
            statuses_a.add(status_a)
            problems += [f"{path_a} ({status_a}) shows {s!r}" for s in sorted(b.secrets) if s in body_a]
            if status_a >= 500:
                problems.append(f"{path_a}: {status_a}")
        if kind != BOTH:
            continue
        for path_b in _paths(name, fill, b):
            status_b, body_b = _get(client, path_b)
            # (a 404 may repeat what the request named: the path is the reader's own words)
            problems += [
                f"{path_b} ({status_b}) shows {s!r}" for s in sorted(b.secrets) if s in body_b and s not in path_b
            ]
            if status_b != 404 and not (statuses_a == {status_b} and status_b in (403, 405)):
                problems.append(f"{path_b}: {status_b}, not 404 (A's gives {sorted(statuses_a)})")
    return problems


def test_a_viewer_of_one_model_sees_nothing_of_another_team(world, make_user, api_client_for):
    # given a viewer of team A's model only (not of its datasets, nor of the team)
    a, b = world
    person = make_user("viewer", username="walker-model", model=a.model)
    browser = Client(raise_request_exception=False)
    browser.force_login(person)
    api = api_client_for(person)
    api.raise_request_exception = False

    # when they walk every route
    problems = _walk(api, a, b, api=True) + _walk(browser, a, b, api=False)

    # then nothing of team B shows, and the pack's binding to team A reads as a team they cannot see
    assert not problems, "\n".join(sorted(set(problems)))
    assert a.model.name in _get(api, "/api/v1/models/")[1]
    scopes = sorted(b["scope"] for b in api.get("/api/v1/policies/loan-limits/bindings/").json()["results"])
    assert scopes == sorted(
        [f"model {a.model.name} (every environment)", "a model you cannot see (every environment)"]
        + ["a team you cannot see (staging)"] * 2
    )


@pytest.mark.parametrize("role", ["viewer", "compliance_officer"])
def test_a_team_s_people_see_nothing_of_another_team(world, make_user, api_client_for, role):
    # given a person holding the role on team A only
    a, b = world
    person = make_user(role, username=f"walker-{role}", team=a.team, member_of=[a.team])
    browser = Client(raise_request_exception=False)
    browser.force_login(person)
    api = api_client_for(person)
    api.raise_request_exception = False
    assert a.secrets and b.secrets

    # when they walk every route of the dashboard and the API
    problems = _walk(api, a, b, api=True) + _walk(browser, a, b, api=False)

    # then no body holds a team-B name, digest or id, and B's objects are 404
    assert not problems, "\n".join(sorted(set(problems)))
    # while A's own objects are named, and B's in A's lineage and bindings are there, as hidden
    assert a.model.name in _get(api, "/api/v1/models/")[1]
    own = next(d for d in a.version.training_datasets.all() if d.owner_team_id == a.team.pk)
    page = _get(browser, f"/models/{a.model.name}/versions/1/")[1]
    assert own.name in page and "a dataset you cannot see" in page
    assert "1 dataset you cannot see" in _get(browser, f"/datasets/{a.dataset.pk}/")[1]
    bindings = api.get("/api/v1/policies/loan-limits/bindings/").json()["results"]
    assert sorted((b["model"] or b["team"] or b["hidden"]) for b in bindings) == sorted(
        [a.model.name, a.team.name, "model", "team"]
    )
    lineage = api.get(f"/api/v1/models/{a.model.name}/versions/1/").json()["lineage"]["training_datasets"]
    assert None in lineage and own.pk in lineage
    decision = api.get(f"/api/v1/releases/{a.release.public_id}/").json()["decision"]
    assert "a dataset you cannot see" in str(decision) and own.name in str(decision)
