"""/api/v1/models/: the permission triad, audit after each write, and pagination."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.audit.choices import Outcome
from apps.registry.models import RegisteredModel
from tests.factories.registry import ModelVersionFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db

MODELS = "/api/v1/models/"


# ---------------------------------------------------------------------------------------------
# GET /models/


def test_listing_models_needs_authentication(anon_client, model):
    response = anon_client.get(MODELS)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"


def test_a_user_without_roles_sees_an_empty_list(make_user, api_client_for, model):
    response = api_client_for(make_user()).get(MODELS)
    assert response.status_code == 200
    assert response.json()["count"] == 0


def test_a_viewer_lists_the_models_of_their_scope(make_user, api_client_for, model, other_team):
    # given
    RegisteredModelFactory(name="ads", owner_team=other_team)
    ModelVersionFactory(model=model)
    viewer = make_user("viewer", team=model.owner_team)
    # when
    response = api_client_for(viewer).get(MODELS)
    # then
    assert response.status_code == 200
    body = response.json()
    assert [m["name"] for m in body["results"]] == ["churn"]
    assert body["results"][0]["version_count"] == 1
    assert body["results"][0]["url"].endswith("/api/v1/models/churn/")


def test_models_can_be_filtered(make_user, api_client_for, team):
    RegisteredModelFactory(name="a", owner_team=team, risk_tier="high", data_categories=["health"])
    RegisteredModelFactory(name="b", owner_team=team, risk_tier="minimal", data_categories=["personal"])
    client = api_client_for(make_user("viewer"))
    assert [m["name"] for m in client.get(MODELS, {"risk_tier": "high"}).json()["results"]] == ["a"]
    assert [m["name"] for m in client.get(MODELS, {"data_category": "personal"}).json()["results"]] == ["b"]
    assert [m["name"] for m in client.get(MODELS, {"team": "credit", "search": "b"}).json()["results"]] == ["b"]


def _queries(client, url: str, page_size: int) -> int:
    client.get(url, {"page_size": 1})  # warm up: the token's last-used time is written at most once a minute
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, {"page_size": page_size})
    assert response.status_code == 200 and len(response.json()["results"]) == page_size
    return len(captured)


def test_the_model_list_query_count_does_not_grow_with_page_size(
    make_user, api_client_for, team, django_assert_max_num_queries
):
    # given
    for i in range(12):
        model = RegisteredModelFactory(name=f"model-{i:02d}", owner_team=team)
        ModelVersionFactory(model=model)
    client = api_client_for(make_user("viewer", team=team))
    small = _queries(client, MODELS, 2)
    # when / then
    with django_assert_max_num_queries(small):
        response = client.get(MODELS, {"page_size": 12})
    assert len(response.json()["results"]) == 12


# ---------------------------------------------------------------------------------------------
# POST /models/


def _new_model(team="credit", name="credit-scoring") -> dict:
    return {
        "name": name,
        "owner_team": team,
        "description": "Scores credit applications",
        "risk_tier": "high",
        "data_categories": ["personal", "financial"],
        "jurisdictions": ["EU"],
    }


def test_creating_a_model_needs_authentication(anon_client, team):
    assert anon_client.post(MODELS, _new_model(), format="json").status_code == 401
    assert not RegisteredModel.objects.exists()


def test_a_viewer_cannot_create_a_model_and_the_attempt_is_audited(make_user, api_client_for, team, audit_mark):
    # given
    client = api_client_for(make_user("viewer", team=team))
    mark = audit_mark()
    # when
    response = client.post(MODELS, _new_model(), format="json")
    # then
    assert response.status_code == 403
    assert not RegisteredModel.objects.exists()
    events = mark.new()
    assert [(e.action, e.outcome) for e in events] == [("model.created", Outcome.DENIED)]


def test_a_user_without_roles_cannot_create_a_model(make_user, api_client_for, team):
    response = api_client_for(make_user()).post(MODELS, _new_model(), format="json")
    assert response.status_code in (403, 404)
    assert not RegisteredModel.objects.exists()


def test_a_contributor_creates_a_model_for_their_team(contributor, api_client_for, team, audit_mark):
    # given
    client = api_client_for(contributor)
    mark = audit_mark()
    # when
    response = client.post(MODELS, _new_model(), format="json")
    # then
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["owner_team"] == "credit" and body["risk_tier"] == "high" and body["created_by"] == "cora"
    assert response["Location"].endswith("/api/v1/models/credit-scoring/")
    assert mark.actions() == ["model.created"]


def test_a_contributor_cannot_create_a_model_for_another_team(contributor, api_client_for, other_team):
    response = api_client_for(contributor).post(MODELS, _new_model(team="marketing"), format="json")
    assert response.status_code in (403, 404)
    assert not RegisteredModel.objects.exists()


def test_a_read_only_token_cannot_create_a_model(contributor, api_client_for, team):
    response = api_client_for(contributor, scopes=["read"]).post(MODELS, _new_model(), format="json")
    assert response.status_code == 403
    assert "registry:write" in response.json()["detail"]


def test_a_taken_name_is_a_conflict(contributor, api_client_for, model):
    response = api_client_for(contributor).post(MODELS, _new_model(name="churn"), format="json")
    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"


def test_a_bad_risk_tier_is_a_validation_problem(contributor, api_client_for, team):
    response = api_client_for(contributor).post(MODELS, {**_new_model(), "risk_tier": "huge"}, format="json")
    assert response.status_code == 400
    assert "risk_tier" in response.json()["errors"]


# ---------------------------------------------------------------------------------------------
# GET / PATCH /models/{name}/


def test_reading_a_model_needs_authentication(anon_client, model):
    assert anon_client.get(f"{MODELS}churn/").status_code == 401


def test_a_model_outside_your_scope_is_not_found(make_user, api_client_for, model):
    assert api_client_for(make_user()).get(f"{MODELS}churn/").status_code == 404


def test_a_viewer_reads_a_model(make_user, api_client_for, model):
    response = api_client_for(make_user("viewer", model=model)).get(f"{MODELS}churn/")
    assert response.status_code == 200
    assert response.json()["name"] == "churn"


def test_updating_a_model_needs_authentication(anon_client, model):
    assert anon_client.patch(f"{MODELS}churn/", {"risk_tier": "high"}, format="json").status_code == 401


def test_a_viewer_cannot_update_a_model(make_user, api_client_for, model):
    response = api_client_for(make_user("viewer", team=model.owner_team)).patch(
        f"{MODELS}churn/", {"risk_tier": "high"}, format="json"
    )
    assert response.status_code == 403
    model.refresh_from_db()
    assert model.risk_tier == "limited"


def test_a_user_without_roles_cannot_update_a_model(make_user, api_client_for, model):
    response = api_client_for(make_user()).patch(f"{MODELS}churn/", {"risk_tier": "high"}, format="json")
    assert response.status_code == 404


def test_a_contributor_updates_a_model_with_an_audited_before_and_after(contributor, api_client_for, model, audit_mark):
    # given
    client = api_client_for(contributor)
    mark = audit_mark()
    # when
    response = client.patch(f"{MODELS}churn/", {"risk_tier": "high", "intended_use": "Retention offers"}, format="json")
    # then
    assert response.status_code == 200
    assert response.json()["risk_tier"] == "high"
    events = mark.new()
    assert [e.action for e in events] == ["model.updated"]
    assert events[0].before == {"risk_tier": "limited", "intended_use": ""}
    assert events[0].after == {"risk_tier": "high", "intended_use": "Retention offers"}


def test_a_model_cannot_be_renamed(contributor, api_client_for, model, audit_mark):
    client = api_client_for(contributor)
    mark = audit_mark()
    response = client.patch(f"{MODELS}churn/", {"name": "attrition"}, format="json")
    assert response.status_code == 400
    assert "cannot be changed" in response.json()["detail"]
    assert RegisteredModel.objects.filter(name="churn").exists()
    assert mark.actions() == []


def test_each_model_counts_its_own_versions_and_the_page_does_not_aggregate_the_versions_table(
    make_user, api_client_for, team
):
    # given
    churn = RegisteredModelFactory(name="churn-a", owner_team=team)
    ads = RegisteredModelFactory(name="ads-a", owner_team=team)
    RegisteredModelFactory(name="empty-a", owner_team=team)
    ModelVersionFactory.create_batch(3, model=churn)
    ModelVersionFactory(model=ads)
    client = api_client_for(make_user("viewer", team=team))
    # when
    with CaptureQueriesContext(connection) as queries:
        body = client.get(MODELS).json()
    # then
    assert {m["name"]: m["version_count"] for m in body["results"]} == {"ads-a": 1, "churn-a": 3, "empty-a": 0}
    listing = next(
        q["sql"] for q in queries.captured_queries if "registry_registeredmodel" in q["sql"] and "ORDER BY" in q["sql"]
    )
    outer_tail = listing.rsplit(")", 1)[-1]  # after the per-row count subquery: the page's own clauses
    assert "GROUP BY" not in outer_tail and "LIMIT" in outer_tail
