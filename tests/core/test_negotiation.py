"""The API's content negotiation shortcut answers exactly as DRF's own negotiation does."""

from __future__ import annotations

import pytest
from django.http import Http404
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from apps.core.negotiation import ContentNegotiation

ACCEPTS = [None, "", "*/*", "application/json", " application/json ", "application/*", "application/json; indent=4",
           "text/html", "text/html, */*;q=0.1", "application/json;q=0.5, text/plain"]  # fmt: skip


def answer(negotiation, accept: str | None, query: str = ""):
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(APIRequestFactory().get("/api/v1/models/" + query, **headers))
    try:
        renderer, media_type = negotiation.select_renderer(request, [JSONRenderer()])
    except NotAcceptable:
        return "406"
    except Http404:  # ?format= naming no renderer
        return "404"
    return type(renderer).__name__, media_type


@pytest.mark.parametrize("accept", ACCEPTS)
@pytest.mark.parametrize("query", ["", "?format=json", "?format=html"])
def test_the_shortcut_gives_drfs_answer(accept, query):
    assert answer(ContentNegotiation(), accept, query) == answer(DefaultContentNegotiation(), accept, query)


def test_the_api_uses_it():
    from rest_framework.settings import api_settings

    assert api_settings.DEFAULT_CONTENT_NEGOTIATION_CLASS is ContentNegotiation
