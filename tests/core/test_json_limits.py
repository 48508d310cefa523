"""A JSON body is bounded in nesting depth and size on every JSON endpoint: a clear 400 or 413
problem naming the limit, never a 500 (deep nesting used to exhaust the recursion limit)."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

PROBLEM_JSON = "application/problem+json"

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(make_user, api_client_for):
    user = make_user("admin")
    return api_client_for(user)


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize("path", ["/api/v1/models/", "/api/v1/teams/", "/api/v1/tokens/"])
@pytest.mark.parametrize("levels", [65, 5_000, 200_000])
def test_json_nested_deeper_than_the_limit_is_a_400_naming_it(api, path, levels):
    api.raise_request_exception = False

    response = api.post(path, nested(levels), content_type="application/json")

    assert response.status_code == 400, response.content[:300]
    assert response["Content-Type"] == PROBLEM_JSON
    body = response.json()
    assert body["code"] == "json_too_deep"
    assert body["detail"] == "JSON nested deeper than 64 levels (ASSAY_MAX_JSON_DEPTH)."


def test_an_object_nested_within_the_limit_reaches_validation(api):
    doc = {"name": "x"}
    for _ in range(62):
        doc = {"a": doc}
    response = api.post("/api/v1/teams/", doc, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "validation_failed"  # parsed, then refused for its shape


@override_settings(ASSAY_MAX_JSON_DEPTH=3)
def test_the_depth_limit_is_a_setting(api):
    within = api.post("/api/v1/teams/", {"name": "ok", "x": {"y": [1]}}, format="json")
    assert within.status_code == 201, within.content
    response = api.post("/api/v1/teams/", {"name": "ok", "x": {"y": {"z": [1]}}}, format="json")

    assert response.status_code == 400
    assert response.json()["detail"] == "JSON nested deeper than 3 levels (ASSAY_MAX_JSON_DEPTH)."


@override_settings(ASSAY_MAX_JSON_BYTES=1000)
def test_a_json_body_over_the_size_limit_is_a_413_naming_it(api):
    response = api.post("/api/v1/teams/", {"name": "big", "description": "x" * 2000}, format="json")

    assert response.status_code == 413
    assert response["Content-Type"] == PROBLEM_JSON
    assert response.json()["detail"] == "JSON body larger than 1000 bytes (ASSAY_MAX_JSON_BYTES)."


def test_deep_json_without_credentials_is_still_a_clean_answer():
    response = Client(raise_request_exception=False).post(
        "/api/v1/models/", nested(100_000), content_type="application/json"
    )

    assert response.status_code == 401
    assert response["Content-Type"] == PROBLEM_JSON


def test_every_api_view_reads_json_with_the_bounded_parser():
    from django.urls import URLPattern, URLResolver, get_resolver
    from rest_framework import parsers

    from apps.core.parsers import JSONParser as BoundedJSONParser

    def views(patterns):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from views(p.url_patterns)
            elif isinstance(p, URLPattern) and hasattr(p.callback, "view_class"):
                yield p.callback.view_class

    checked = 0
    for view in views(get_resolver().url_patterns):
        for parser in getattr(view, "parser_classes", ()):
            if issubclass(parser, parsers.JSONParser):
                assert issubclass(parser, BoundedJSONParser), f"{view.__module__}.{view.__name__} reads JSON unbounded"
                checked += 1
    assert checked > 20
