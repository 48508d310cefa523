"""Every API error is an ``application/problem+json`` document (RFC 9457) with a stable code.

Real endpoints where one produces the error on its own (401, 404, 405); for the rest, small
test-only endpoints below raise the domain errors that services raise, through the real
authentication, parsers, exception handler and audit trail.
"""

from __future__ import annotations

import pytest
from django.urls import path
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.errors import Conflict, PayloadTooLarge, UnsupportedContent
from apps.rbac import services as rbac
from controlplane import urls as root_urls

PROBLEM_JSON = "application/problem+json"


class ProbeInput(serializers.Serializer):
    name = serializers.CharField(max_length=10)
    count = serializers.IntegerField(min_value=1)


class ProbeView(APIView):
    """Validates its JSON body like any create endpoint."""

    parser_classes = [JSONParser]

    def post(self, request):
        ProbeInput(data=request.data).is_valid(raise_exception=True)
        return Response({}, status=status.HTTP_201_CREATED)


class UploadProbeView(APIView):
    """Reads a multipart body (Django enforces DATA_UPLOAD_MAX_MEMORY_SIZE on its fields)."""

    parser_classes = [MultiPartParser]

    def post(self, request):
        return Response({"fields": sorted(request.data)})


class ConflictView(APIView):
    def post(self, request):
        raise Conflict(
            "Version 3 of churn already has this artifact.",
            extra={"existing": {"number": 3, "url": "/api/v1/models/churn/versions/3/"}},
        )


class TooLargeView(APIView):
    def post(self, request):
        raise PayloadTooLarge("The artifact exceeds the 1 KB upload limit.")


class PickleView(APIView):
    def post(self, request):
        raise UnsupportedContent("Pickle files are refused: loading them runs arbitrary code.")


class AdminOnlyView(APIView):
    """Asks rbac for a permission most users lack."""

    def post(self, request):
        rbac.require(request.principal, "accounts.manage", audit_action="team.created")
        return Response({})


urlpatterns = [
    path("api/v1/_probe/validate/", ProbeView.as_view()),
    path("api/v1/_probe/upload/", UploadProbeView.as_view()),
    path("api/v1/_probe/conflict/", ConflictView.as_view()),
    path("api/v1/_probe/too-large/", TooLargeView.as_view()),
    path("api/v1/_probe/pickle/", PickleView.as_view()),
    path("api/v1/_probe/admin-only/", AdminOnlyView.as_view()),
    *root_urls.urlpatterns,
]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


def assert_problem(response, status_code: int, code: str) -> dict:
    """The response is a problem document with this status and code, naming the path and request id."""
    assert response.status_code == status_code, response.content
    assert response["Content-Type"] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == status_code
    assert body["code"] == code
    assert body["type"] == f"https://assay.dev/problems/{code}"
    assert body["title"] and body["detail"]
    assert body["instance"] == response.wsgi_request.path
    assert body["request_id"] == response["X-Request-ID"]
    return body


@pytest.fixture
def client(make_user, api_client_for):
    return api_client_for(make_user())


def test_400_names_each_invalid_field(client):
    response = client.post("/api/v1/_probe/validate/", {"name": "far too long a name", "count": 0}, format="json")

    body = assert_problem(response, 400, "validation_failed")
    assert set(body["errors"]) == {"name", "count"}
    assert body["errors"]["count"] == ["Ensure this value is greater than or equal to 1."]
    assert body["detail"].startswith("name: ")


def test_400_for_a_body_that_is_not_json(client):
    response = client.post("/api/v1/_probe/validate/", "{not json", content_type="application/json")

    body = assert_problem(response, 400, "parse_error")
    assert "JSON parse error" in body["detail"]


def test_401_without_credentials_asks_for_a_bearer_token(anon_client):
    response = anon_client.post("/api/v1/_probe/validate/", {}, format="json")

    body = assert_problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="assay"'
    assert body["detail"] == "Authentication credentials were not provided."


def test_401_for_a_token_that_is_not_one(anon_client):
    anon_client.credentials(HTTP_AUTHORIZATION="Bearer assay_nope_nope")

    response = anon_client.get("/api/v1/_probe/validate/")

    assert_problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="assay"'


def test_403_is_audited_as_a_denial(client, audit_mark):
    mark = audit_mark()

    response = client.post("/api/v1/_probe/admin-only/", {}, format="json")

    body = assert_problem(response, 403, "permission_denied")
    assert "accounts.manage" in body["detail"]
    [event] = mark.new()
    assert (event.action, event.outcome, event.source) == ("team.created", "denied", "api")
    assert event.request_id == response["X-Request-ID"]


def test_404_for_a_path_that_is_no_endpoint(client):
    response = client.get("/api/v1/no-such-thing/")

    body = assert_problem(response, 404, "not_found")
    assert body["detail"] == "No API endpoint at /api/v1/no-such-thing/."


def test_404_for_a_missing_trailing_slash_names_the_right_path(anon_client):
    response = anon_client.get("/api/v1/health")

    body = assert_problem(response, 404, "not_found")
    assert body["detail"].endswith("API paths end with a slash: /api/v1/health/")


def test_405_lists_the_allowed_methods(client):
    response = client.delete("/api/v1/_probe/validate/")

    assert_problem(response, 405, "method_not_allowed")
    assert "POST" in response["Allow"]


def test_409_carries_the_conflicting_object(client):
    response = client.post("/api/v1/_probe/conflict/", {}, format="json")

    body = assert_problem(response, 409, "conflict")
    assert body["existing"] == {"number": 3, "url": "/api/v1/models/churn/versions/3/"}


def test_413_from_a_service(client):
    response = client.post("/api/v1/_probe/too-large/", {}, format="json")

    body = assert_problem(response, 413, "payload_too_large")
    assert body["detail"] == "The artifact exceeds the 1 KB upload limit."


def test_413_when_form_fields_exceed_the_request_size_limit(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024

    response = client.post("/api/v1/_probe/upload/", {"notes": "x" * 5000}, format="multipart")

    assert_problem(response, 413, "payload_too_large")


def test_415_for_a_content_type_the_endpoint_does_not_read(client):
    response = client.post("/api/v1/_probe/validate/", "name=a&count=1", content_type="text/plain")

    body = assert_problem(response, 415, "unsupported_media_type")
    assert "text/plain" in body["detail"]


def test_415_from_a_service_refusing_content(client):
    response = client.post("/api/v1/_probe/pickle/", {}, format="json")

    assert_problem(response, 415, "unsupported_content")
