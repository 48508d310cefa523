"""Releases API: thin views over the releases selectors and services."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from apps.core.api.params import query_choice
from apps.policies.disclosure import visible_dataset_ids
from apps.releases import selectors, services
from apps.releases.choices import ReleaseStatus
from apps.releases.environments import environment_names
from apps.releases.waiting import wait_seconds

from .serializers import (
    ApprovalInput,
    CancelInput,
    EnvironmentInput,
    EnvironmentOutput,
    GateOutput,
    ReleaseOutput,
    ReleaseRequestInput,
    ReviewCloseInput,
    gate_payload,
    release_url,
)

PROBLEM = OpenApiResponse(description="Problem details (application/problem+json).")
_REFUSALS = {400: PROBLEM, 401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 409: PROBLEM}
_RELEASE_ID = OpenApiParameter("release_id", OpenApiTypes.UUID, OpenApiParameter.PATH)


def _release(request, release_id, code=status.HTTP_200_OK) -> Response:
    release = selectors.release_get(actor=request.principal, release_id=release_id)
    headers = {"Location": release_url(release, request)} if code == status.HTTP_201_CREATED else None
    return Response(ReleaseOutput(release, context={"request": request}).data, status=code, headers=headers)


class EnvironmentListApi(GenericAPIView):
    """``GET``: the environments releases go to. ``POST``: define another (admins)."""

    serializer_class = EnvironmentOutput
    pagination_class = None

    @extend_schema(operation_id="environments_list", responses={200: EnvironmentOutput(many=True), 401: PROBLEM})
    def get(self, request):
        return Response(EnvironmentOutput(selectors.environment_list(), many=True).data)

    @extend_schema(
        operation_id="environments_create", request=EnvironmentInput, responses={201: EnvironmentOutput, **_REFUSALS}
    )
    def post(self, request):
        data = EnvironmentInput(data=request.data)
        data.is_valid(raise_exception=True)
        env = services.environment_create(actor=request.principal, **data.validated_data)
        return Response(EnvironmentOutput(env).data, status=status.HTTP_201_CREATED)


class ReleaseListApi(GenericAPIView):
    """``GET``: release requests you may see, newest first. ``POST``: request a release (evaluates the policies)."""

    serializer_class = ReleaseOutput

    @extend_schema(
        operation_id="releases_list",
        parameters=[
            OpenApiParameter("status", str, enum=ReleaseStatus.values),
            OpenApiParameter("environment", str, description="An environment's name (400 listing them otherwise)"),
            OpenApiParameter("model", str),
        ],
        responses={200: ReleaseOutput(many=True), 400: PROBLEM, 401: PROBLEM},
    )
    def get(self, request):
        params = request.query_params
        releases = selectors.release_list(
            actor=request.principal,
            status=query_choice(request, "status", ReleaseStatus.values),
            environment=params.get("environment", ""),
            model=params.get("model", ""),
        )
        page = self.paginate_queryset(releases)
        if not page and "environment" in params:
            # Only an empty page can come from a misspelt environment: a 400 naming the known ones,
            # at no cost to the lists that find something.
            query_choice(request, "environment", environment_names())
        visible = visible_dataset_ids(actor=request.principal, decisions=[r.decision for r in page])
        context = {"request": request, "visible_datasets": visible}
        return self.get_paginated_response(ReleaseOutput(page, many=True, context=context).data)

    @extend_schema(
        operation_id="releases_create", request=ReleaseRequestInput, responses={201: ReleaseOutput, **_REFUSALS}
    )
    def post(self, request):
        data = ReleaseRequestInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        release = services.release_request_create(
            actor=request.principal,
            model_name=values["model"],
            number=values["version"],
            environment=values["environment"],
            justification=values["justification"],
            change_reference=values["change_reference"],
            emergency=values["emergency"],
        )
        return _release(request, release.public_id, status.HTTP_201_CREATED)


class ReleaseDetailApi(GenericAPIView):
    """One release request: status, stored decision, approvals so far."""

    serializer_class = ReleaseOutput

    @extend_schema(
        operation_id="releases_retrieve",
        parameters=[_RELEASE_ID],
        responses={200: ReleaseOutput, 401: PROBLEM, 404: PROBLEM},
    )
    def get(self, request, release_id):
        return _release(request, release_id)


class ReleaseApprovalApi(GenericAPIView):
    """Approve or reject (with a reason) a release request; four eyes is enforced here."""

    serializer_class = ReleaseOutput

    @extend_schema(
        operation_id="releases_approvals_create",
        parameters=[_RELEASE_ID],
        request=ApprovalInput,
        responses={201: ReleaseOutput, **_REFUSALS},
    )
    def post(self, request, release_id):
        data = ApprovalInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.approval_decide(actor=request.principal, release_id=release_id, **data.validated_data)
        return _release(request, release_id, status.HTTP_201_CREATED)


class ReleaseCancelApi(GenericAPIView):
    """Withdraw a request (its requester or a release manager)."""

    serializer_class = ReleaseOutput

    @extend_schema(
        operation_id="releases_cancel",
        parameters=[_RELEASE_ID],
        request=CancelInput,
        responses={200: ReleaseOutput, **_REFUSALS},
    )
    def post(self, request, release_id):
        data = CancelInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.release_cancel(actor=request.principal, release_id=release_id, reason=data.validated_data["reason"])
        return _release(request, release_id)


class ReleaseReviewCloseApi(GenericAPIView):
    """Close the post-release review of a break-glass release, with findings (compliance officers)."""

    serializer_class = ReleaseOutput

    @extend_schema(
        operation_id="releases_review_close",
        parameters=[_RELEASE_ID],
        request=ReviewCloseInput,
        responses={200: ReleaseOutput, **_REFUSALS},
    )
    def post(self, request, release_id):
        data = ReviewCloseInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.post_release_review_close(
            actor=request.principal, release_id=release_id, findings=data.validated_data["findings"]
        )
        return _release(request, release_id)


class GateApi(GenericAPIView):
    """The gate CI asks: may this version go to ``environment`` now? ``allowed`` and, if not, why."""

    serializer_class = GateOutput

    @extend_schema(
        operation_id="models_versions_gate",
        parameters=[
            OpenApiParameter("environment", str, required=True, description="e.g. production"),
            OpenApiParameter(
                "wait",
                {"type": "number", "minimum": 0},
                description="Seconds to hold the answer until it is final (allowed, emergency, blocked, rejected) or "
                "changes; at most ASSAY_GATE_MAX_WAIT (larger values are clamped). The response says how it ended "
                "(wait_outcome) and how long it waited (waited, also the X-Assay-Waited header).",
            ),
        ],
        responses={200: GateOutput, 400: PROBLEM, 401: PROBLEM, 404: PROBLEM},
    )
    def get(self, request, name: str, number: int):
        wait = wait_seconds(request.query_params.get("wait"))
        gate = selectors.gate_decision(
            actor=request.principal,
            model_name=name,
            number=number,
            environment=request.query_params.get("environment", ""),
            wait=wait,
        )
        response = Response(gate_payload(gate, request))
        response["X-Assay-Waited"] = f"{gate.waited:.3f}"
        return response
