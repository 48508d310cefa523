"""What a compliance officer reads on the dashboard: labels instead of slugs, people by full name and
username, one time format, and for every model what is approved in which environment."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.accounts.principals import principal_for_user
from apps.releases import selectors
from apps.releases import services as release_services
from apps.releases.models import Environment
from tests.factories.registry import ModelVersionFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db

# Raw values that must never reach a reader: enum slugs, and the doubled words the old pages showed.
SLUGS = ("compliance_officer", "release_required", "pending_approval", "pending_evidence", "revalidation_due")
TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC")
OTHER_TIMES = (
    re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}"),  # ISO text outside a <time datetime> attribute
    re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}(?::\d{2})?(?! UTC)"),  # a time without its zone, or with seconds
    re.compile(r"\b(?:minutes?|hours?|days?) ago\b"),
)


def visible(html: str) -> str:
    """The text a person reads: no tags, attributes, scripts or the Rego source; whitespace collapsed."""
    html = re.sub(r"<(script|style|pre)\b.*?</\1>", " ", html, flags=re.S)
    html = re.sub(r"<option\b[^>]*>", " ", html)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def named(user, first: str, last: str):
    user.first_name, user.last_name = first, last
    user.save(update_fields=["first_name", "last_name"])
    return user


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def assert_reads_like_words(html: str) -> str:
    text = visible(html)
    for slug in SLUGS:
        assert slug not in text, slug
    assert "allowed allowed" not in text.lower()
    assert "production production" not in text.lower()
    for pattern in OTHER_TIMES:
        assert not pattern.search(text), pattern.pattern
    return text


@pytest.fixture
def people(requester, reviewer, officer, author):
    named(requester, "Rex", "Moreau")
    named(reviewer, "Rita", "Okafor")
    named(officer, "Cleo", "Lindqvist")
    named(author, "Ava", "Stone")
    return requester, reviewer, officer


@pytest.fixture
def approved_in_production(people, request_release, version):
    """The churn model's v1, approved for production by Rita (its revalidation date set by the approval)."""
    requester, reviewer, _ = people
    release = request_release(requester, version, "production", change_reference="CHG-1")
    release_services.approval_decide(
        actor=principal_for_user(reviewer),
        release_id=release.public_id,
        decision="approve",
        binding_digest=release.binding_digest,
    )
    release.refresh_from_db()
    assert release.status == "approved" and release.revalidate_at is not None
    return release


def test_the_inventory_says_what_is_approved_where(approved_in_production, people, staging):
    # given v1 approved for production and nothing requested for staging
    _, _, officer = people
    # when the compliance officer opens the inventory
    html = logged_in(officer).get("/").content.decode()
    # then the model's row names the state, the version, the approver and the revalidation date per environment
    text = assert_reads_like_words(html)
    row = visible(html[html.index('data-environment="production"') :].split(">", 1)[1][:1500])
    assert row.lstrip().startswith("Production")
    assert "Approved" in row and "v1" in row and "Rita Okafor (rita)" in row and "revalidate by" in row
    assert TIME.search(row)
    assert "Staging Not released" in text
    assert f'<time datetime="{approved_in_production.revalidate_at.isoformat()}">' in html


def test_the_model_page_says_what_is_approved_where(approved_in_production, people, request_release, version):
    # given a staging request still waiting for approval beside the production approval
    requester, _, officer = people
    request_release(requester, version, "staging")
    # when
    html = logged_in(officer).get("/models/churn/").content.decode()
    # then
    table = html[html.index('id="environment-table"') : html.index("</table>", html.index('id="environment-table"'))]
    production = visible(table[table.index('data-environment="production"') :].split("</tr>")[0])
    staging = visible(table[table.index('data-environment="staging"') :].split("</tr>")[0])
    assert "Production" in production and "Approved" in production and "Rita Okafor (rita)" in production
    assert len(TIME.findall(production)) == 2  # approved on, revalidate by
    assert "Staging" in staging and "Pending approval" in staging and "v1 pending approval" in staging
    assert_reads_like_words(html)


def test_release_pages_name_people_and_roles_in_words(approved_in_production, people, request_release, high_version):
    requester, reviewer, officer = people
    # given a high-risk release that still needs a compliance officer's approval
    pending = request_release(requester, high_version, "production", change_reference="CHG-2")
    # when the reviewer reads the release, the queue and the list
    web = logged_in(reviewer)
    release_page = web.get(f"/releases/{pending.public_id}/").content.decode()
    queue = web.get("/approvals/").content.decode()
    listing = web.get("/releases/").content.decode()
    approved_page = web.get(f"/releases/{approved_in_production.public_id}/").content.decode()
    # then roles read as labels, people by name and username, times in one format
    text = assert_reads_like_words(release_page)
    assert "Compliance officer: 0 of 1" in text and "Rex Moreau (rex)" in text and TIME.search(text)
    text = assert_reads_like_words(queue)
    assert "Approval: " in text and "Rex Moreau (rex)" in text and "since " in text
    text = assert_reads_like_words(listing)
    assert "Production" in text and "Rex Moreau (rex)" in text and TIME.search(text)
    text = assert_reads_like_words(approved_page)
    assert "Rita Okafor (rita)" in text and "Approved" in text and "Reviewer" in text


def test_the_version_page_gate_reads_once_and_in_words(approved_in_production, people, decided):
    requester, _, officer = people
    decided()
    html = logged_in(officer).get("/models/churn/versions/1/").content.decode()
    text = assert_reads_like_words(html)
    gates = visible(html[html.index('id="release-gates"') :])
    assert "Production Allowed" in gates
    assert "Staging Closed No release requested" in gates
    assert "by Ava Stone (ava)" in text
    # the request form's environments are labels too, the values stay the names the API takes
    form = logged_in(requester).get("/models/churn/versions/1/").content.decode()
    assert '<option value="production">Production</option>' in form


def test_the_audit_trail_names_actors_and_actions(approved_in_production, make_user):
    auditor = make_user("auditor", username="aud")
    html = logged_in(auditor).get("/audit/").content.decode()
    text = assert_reads_like_words(html)
    assert "Rita Okafor (rita)" in text
    assert "Release: approval recorded" in text
    assert "Person · Web" in text or "Person · API" in text or "Person · CLI" in text
    assert TIME.search(text) and "<time datetime=" in html


def test_a_person_without_a_name_is_shown_by_username(people, request_release, version):
    requester, reviewer, _ = people
    named(requester, "", "")
    release = request_release(requester, version, "staging")
    text = visible(logged_in(reviewer).get(f"/releases/{release.public_id}/").content.decode())
    assert "by rex" in text and "()" not in text


# ---- what is approved where stays flat ------------------------------------------------------------


def _approved(model, env, requester, reviewer, number=1):
    version = ModelVersionFactory(model=model, number=number, sha256=f"{model.pk:032x}{number:032x}")
    release = release_services.release_request_create(
        actor=principal_for_user(requester),
        model_name=model.name,
        number=version.number,
        environment=env.name,
        justification="refresh",
        change_reference="CHG-9",
    )
    release_services.approval_decide(
        actor=principal_for_user(reviewer),
        release_id=release.public_id,
        decision="approve",
        binding_digest=release.binding_digest,
    )
    return release


def test_what_is_approved_where_costs_four_queries_whatever_the_models_and_environments(
    people, team, staging, production, officer
):
    requester, reviewer, _ = people
    canary = Environment.objects.create(name="canary")
    envs = [staging, production, canary]
    models = [RegisteredModelFactory(name=f"model-{n}", owner_team=team, risk_tier="minimal") for n in range(6)]
    for n, model in enumerate(models):
        _approved(model, envs[n % 3], requester, reviewer)
        _approved(model, envs[(n + 1) % 3], requester, reviewer, number=2)
    actor = principal_for_user(officer)

    def count(model_ids):
        with CaptureQueriesContext(connection) as queries:
            overview = selectors.model_release_overview(actor=actor, model_ids=model_ids)
            # everything the pages read from the rows: states, versions, approvers, dates
            shown = [
                (row.state, row.approved and row.approved.version.number, [a.username for a in row.approvers])
                for rows in overview.values()
                for row in rows
            ]
        return len(queries), overview, shown

    few, _, _ = count([models[0].pk])
    many, overview, shown = count([m.pk for m in models])
    # the actor's grants (rbac), environments, the live releases, their approvals: the same for one model and six
    assert few == many == 4
    assert len(shown) == 6 * 3
    first = {row.environment.name: row for row in overview[models[0].pk]}
    assert first["staging"].state == "approved" and first["staging"].approved.version.number == 1
    assert [a.username for a in first["staging"].approvers] == ["rita"]
    assert first["production"].approved.version.number == 2
    assert first["canary"].state == "not_released"


def test_the_inventory_costs_the_same_for_two_models_and_for_eight(people, team, staging, production, officer):
    requester, reviewer, _ = people
    envs = [staging, production]
    client = logged_in(officer)

    def add(n):
        model = RegisteredModelFactory(name=f"m-{n:02d}", owner_team=team, risk_tier="minimal")
        _approved(model, envs[n % 2], requester, reviewer)

    for n in range(2):
        add(n)
    client.get("/")  # the session is warm
    with CaptureQueriesContext(connection) as small:
        assert client.get("/").status_code == 200
    for n in range(2, 8):
        add(n)
    with CaptureQueriesContext(connection) as large:
        html = client.get("/").content.decode()
    assert len(large) == len(small)
    assert html.count("Rita Okafor (rita)") == 8


def test_reading_what_is_approved_where_writes_nothing(approved_in_production, people):
    _, _, officer = people
    client = logged_in(officer)
    client.get("/")
    with CaptureQueriesContext(connection) as queries:
        client.get("/")
        client.get("/models/churn/")
    writes = [q["sql"] for q in queries if not q["sql"].lstrip().upper().startswith(("SELECT", "SAVEPOINT", "RELEASE"))]
    assert writes == []
