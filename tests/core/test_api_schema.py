"""The schema declares each operation's problem+json errors; lists refuse malformed pages and filters."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator

from apps.core.errors import PROBLEM_JSON
from tests.factories.registry import RegisteredModelFactory

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def published():
    return SchemaGenerator().get_schema(request=None, public=True)


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def test_every_error_answer_is_a_problem_document(published):
    # given: the published schema
    for path, method, operation in _operations(published):
        for code, response in operation["responses"].items():
            if int(code) >= 400:
                # then: every declared error has a problem+json body and no other content type
                assert list(response["content"]) == [PROBLEM_JSON], (method, path, code)
    assert {"type", "title", "status", "detail", "code"} <= set(
        published["components"]["schemas"]["Problem"]["required"]
    )


def test_statuses_follow_what_the_operation_is(published):
    # given: a public read, an authenticated paginated list, an object route, an upload and a delete
    ops = {(m, p): o for p, m, o in _operations(published)}
    health = set(ops[("get", "/api/v1/health/")]["responses"])
    models_list = set(ops[("get", "/api/v1/models/")]["responses"])
    model_get = set(ops[("get", "/api/v1/models/{name}/")]["responses"])
    upload = set(ops[("post", "/api/v1/models/{name}/versions/")]["responses"])
    delete = set(ops[("delete", "/api/v1/webhooks/{webhook_id}/")]["responses"])
    # then
    assert {"406", "429"} <= health and not {"401", "403"} & health
    assert {"400", "401", "403", "404", "406", "429"} <= models_list  # 404: a page that does not exist
    assert {"401", "403", "404"} <= model_get and "409" not in model_get and "400" not in model_get
    assert {"400", "401", "403", "404", "409", "413", "415", "429"} <= upload
    assert {"400", "403", "404", "409"} <= delete and "415" not in delete
    assert "WWW-Authenticate" in ops[("get", "/api/v1/models/")]["responses"]["401"]["headers"]


def test_schema_generates_without_warnings():
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")


@pytest.fixture
def viewer_client(make_user, api_client_for):
    return api_client_for(make_user("viewer"), scopes=["read"])


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("page=0", 404),
        ("page=9", 404),
        ("page=abc", 400),
        ("page=", 400),
        ("page_size=0", 400),
        ("page_size=%C2%B2", 400),
        ("page_size=", 400),
        ("risk_tier=unheard-of", 400),
        ("risk_tier=", 400),
    ],
)
def test_a_list_refuses_a_malformed_page_or_filter_as_a_problem(viewer_client, query, status):
    # given: a model to list
    RegisteredModelFactory()
    # when
    response = viewer_client.get(f"/api/v1/models/?{query}")
    # then
    assert response.status_code == status
    assert response["Content-Type"] == PROBLEM_JSON
    assert response.json()["status"] == status


def test_a_page_size_past_the_maximum_is_cut_to_it(viewer_client):
    # given
    RegisteredModelFactory.create_batch(2)
    # when
    response = viewer_client.get("/api/v1/models/?page_size=99999999999999999999&page=1")
    # then
    assert response.status_code == 200
    assert response.json()["count"] == 2


def test_an_unknown_release_status_filter_is_a_400_naming_the_choices(viewer_client):
    response = viewer_client.get("/api/v1/releases/?status=shipped")
    assert response.status_code == 400
    assert "pending_approval" in response.json()["errors"]["status"][0]


def test_a_path_with_a_newline_is_a_problem_not_an_html_page(viewer_client):
    response = viewer_client.get("/api/v1/models/a%0Ab/versions/x/")
    assert response.status_code == 404
    assert response["Content-Type"] == PROBLEM_JSON


def test_a_packs_bindings_come_in_pages_as_the_schema_says(make_user, api_client_for, principal_of, team):
    # given: a pack bound to a team
    from apps.policies import services as policies
    from tests.policies.test_api import GOOD

    officer = make_user("admin")
    client = api_client_for(officer)
    policies.policy_pack_create(actor=principal_of(officer), name="loan-limits", source=GOOD)
    policies.policy_binding_create(actor=principal_of(officer), pack_name="loan-limits", team=team)
    # when
    body = client.get("/api/v1/policies/loan-limits/bindings/").json()
    # then
    assert body["count"] == 1 and body["results"][0]["team"] == team.name


def test_an_accept_header_the_api_cannot_answer_is_a_406_problem(viewer_client):
    # given: an operation that declares 406 (every one does)
    # when
    response = viewer_client.get("/api/v1/models/", HTTP_ACCEPT="text/html")
    # then
    assert response.status_code == 406
    assert response["Content-Type"] == PROBLEM_JSON


def test_a_body_of_a_type_the_operation_does_not_read_is_a_415_problem(make_user, api_client_for, team):
    # given: a contributor, and a body as plain text
    client = api_client_for(make_user("contributor", team=team))
    # when
    response = client.post("/api/v1/models/", data="name=x", content_type="text/plain")
    # then
    assert response.status_code == 415
    assert response["Content-Type"] == PROBLEM_JSON
