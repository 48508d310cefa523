"""Evidence API: thin views over the evidence selectors and services."""

from __future__ import annotations

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from apps.core.api.params import query_choice
from apps.evidence import selectors, services
from apps.evidence.choices import EvidenceKind
from apps.registry import selectors as registry

from .serializers import (
    EvidenceRequestInput,
    EvidenceRequestOutput,
    EvidenceRunOutput,
    FindingReviewInput,
    FindingReviewOutput,
    VersionEvidenceRequestInput,
    evidence_run_url,
)

PROBLEM = OpenApiResponse(description="Problem details (application/problem+json).")
_REFUSALS = {400: PROBLEM, 401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 409: PROBLEM}
_KIND_FILTER = OpenApiParameter("kind", str, enum=EvidenceKind.values, description="Only runs of this kind.")
_DATASET_ID = OpenApiParameter("dataset_id", OpenApiTypes.INT, OpenApiParameter.PATH)


def _requested(request, outcome: services.EvidenceRequested) -> Response:
    """202 and the run's URL for a new run; 200 for an equal run reused."""
    run = selectors.evidence_run_get(actor=request.principal, run_id=outcome.run.public_id)
    body = {**EvidenceRunOutput(run, context={"request": request}).data, "reused": outcome.reused}
    if outcome.reused:
        return Response(body, status=status.HTTP_200_OK, headers={"Location": body["url"]})
    return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": evidence_run_url(run, request)})


class VersionEvidenceApi(GenericAPIView):
    """``GET``: a version's evidence runs, newest first. ``POST``: request evidence on the version.

    The version's evaluation dataset is used unless ``dataset_id`` names another. A run with the
    same kind, inputs and parameters is reused (200, ``reused: true``) unless ``rerun`` is true.
    """

    serializer_class = EvidenceRunOutput

    @extend_schema(
        operation_id="models_versions_evidence_list",
        parameters=[_KIND_FILTER],
        responses={200: EvidenceRunOutput(many=True), 401: PROBLEM, 404: PROBLEM},
    )
    def get(self, request, name: str, number: int):
        version = registry.version_get(actor=request.principal, model_name=name, number=number)
        runs = selectors.evidence_run_list(
            actor=request.principal, version=version, kind=query_choice(request, "kind", EvidenceKind.values)
        )
        page = self.paginate_queryset(runs)
        return self.get_paginated_response(EvidenceRunOutput(page, many=True, context={"request": request}).data)

    @extend_schema(
        operation_id="models_versions_evidence_create",
        request=VersionEvidenceRequestInput,
        responses={202: EvidenceRequestOutput, 200: EvidenceRequestOutput, **_REFUSALS},
    )
    def post(self, request, name: str, number: int):
        data = VersionEvidenceRequestInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        outcome = services.evidence_request(
            actor=request.principal,
            kind=values["kind"],
            version=(name, number),
            dataset_id=values.get("dataset_id"),
            parameters=values.get("parameters"),
            rerun=values["rerun"],
        )
        return _requested(request, outcome)


class DatasetEvidenceApi(GenericAPIView):
    """``GET``: evidence runs on a dataset (its own and versions' evaluated on it). ``POST``: request evidence."""

    serializer_class = EvidenceRunOutput

    @extend_schema(
        operation_id="datasets_evidence_list",
        parameters=[_DATASET_ID, _KIND_FILTER],
        responses={200: EvidenceRunOutput(many=True), 401: PROBLEM, 404: PROBLEM},
    )
    def get(self, request, dataset_id: int):
        dataset = registry.dataset_get(actor=request.principal, dataset_id=dataset_id)
        runs = selectors.evidence_run_list(
            actor=request.principal, dataset=dataset, kind=query_choice(request, "kind", EvidenceKind.values)
        )
        page = self.paginate_queryset(runs)
        return self.get_paginated_response(EvidenceRunOutput(page, many=True, context={"request": request}).data)

    @extend_schema(
        operation_id="datasets_evidence_create",
        parameters=[_DATASET_ID],
        request=EvidenceRequestInput,
        responses={202: EvidenceRequestOutput, 200: EvidenceRequestOutput, **_REFUSALS},
    )
    def post(self, request, dataset_id: int):
        data = EvidenceRequestInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        outcome = services.evidence_request(
            actor=request.principal,
            kind=values["kind"],
            dataset_id=dataset_id,
            parameters=values.get("parameters"),
            rerun=values["rerun"],
        )
        return _requested(request, outcome)


class EvidenceRunDetailApi(GenericAPIView):
    """One evidence run: status, progress and message (from its job), then its summary or the reason it failed."""

    serializer_class = EvidenceRunOutput

    @extend_schema(
        operation_id="evidence_retrieve",
        parameters=[OpenApiParameter("run_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        responses={200: EvidenceRunOutput, 401: PROBLEM, 404: PROBLEM},
    )
    def get(self, request, run_id):
        run = selectors.evidence_run_get(actor=request.principal, run_id=run_id)
        return Response(EvidenceRunOutput(run, context={"request": request}).data)


_RUN_ID = OpenApiParameter("run_id", OpenApiTypes.UUID, OpenApiParameter.PATH)


class EvidenceRunCancelApi(GenericAPIView):
    """Cancel a queued or running run; a worker computing it stops at its next progress report (409 if finished)."""

    serializer_class = EvidenceRunOutput

    @extend_schema(
        operation_id="evidence_cancel",
        request=None,
        parameters=[_RUN_ID],
        responses={200: EvidenceRunOutput, 401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 409: PROBLEM},
    )
    def post(self, request, run_id):
        services.evidence_run_cancel(actor=request.principal, run_id=run_id)
        run = selectors.evidence_run_get(actor=request.principal, run_id=run_id)
        return Response(EvidenceRunOutput(run, context={"request": request}).data)


class FindingReviewApi(GenericAPIView):
    """``GET``: the reviews of a PII scan's findings, newest first. ``POST``: mark a finding (reviewers)."""

    serializer_class = FindingReviewOutput

    @extend_schema(
        operation_id="evidence_reviews_list",
        parameters=[_RUN_ID],
        responses={200: FindingReviewOutput(many=True), 401: PROBLEM, 404: PROBLEM},
    )
    def get(self, request, run_id):
        run = selectors.evidence_run_get(actor=request.principal, run_id=run_id)
        page = self.paginate_queryset(run.reviews.all())
        return self.get_paginated_response(FindingReviewOutput(page, many=True).data)

    @extend_schema(
        operation_id="evidence_reviews_create",
        parameters=[_RUN_ID],
        request=FindingReviewInput,
        responses={201: FindingReviewOutput, **_REFUSALS},
    )
    def post(self, request, run_id):
        data = FindingReviewInput(data=request.data)
        data.is_valid(raise_exception=True)
        review = services.evidence_finding_review(actor=request.principal, run_id=run_id, **data.validated_data)
        return Response(FindingReviewOutput(review).data, status=status.HTTP_201_CREATED)


class EvidenceFileDownloadApi(GenericAPIView):
    """Download one result file of a run (a table, the SHAP values); every download is audited."""

    @extend_schema(
        operation_id="evidence_file_download",
        parameters=[_RUN_ID, OpenApiParameter("name", str, OpenApiParameter.PATH)],
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, 401: PROBLEM, 404: PROBLEM},
    )
    def get(self, request, run_id, name: str):
        return file_response(*services.evidence_file_download(actor=request.principal, run_id=run_id, name=name))


def file_response(file, stream) -> FileResponse:
    """Stream a stored result file as an attachment under its own (generated, safe) name."""
    return FileResponse(stream, as_attachment=True, filename=file.name, content_type=file.content_type)
