"""Reports API: ask for a report (202 with its URL), follow its progress, download its files. Thin."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from apps.core.errors import NotFound
from apps.registry.api.views import _LINK_RESPONSES, PROBLEM, _AnyMediaType, download_response, link_response

from .. import certificate, downloads, reviews, schedules, selectors, services
from .serializers import (
    AccessReviewDecideInput,
    AccessReviewItemOutput,
    AccessReviewOutput,
    AccessReviewStartInput,
    ReportCreateInput,
    ReportOutput,
    ScheduleInput,
    ScheduleOutput,
)

_REPORT_ID = OpenApiParameter("report_id", OpenApiTypes.UUID, OpenApiParameter.PATH)


class ReportListApi(GenericAPIView):
    """Reports in your scope, newest first (`reports.view`); POST asks for one (202 with its URL).

    Kinds: `release` (`release`: its id), `model` (`model`: its name; optional `since`, `until`) and `period`
    (`since`, `until`; `team` for one team). Formats: `pdf`, `html`, `pack` (default `pdf` and `pack`).
    """

    serializer_class = ReportOutput

    @extend_schema(operation_id="reports_list", responses={200: ReportOutput(many=True), 403: PROBLEM})
    def get(self, request):
        page = self.paginate_queryset(selectors.report_list(actor=request.principal))
        return self.get_paginated_response(ReportOutput(page, many=True, context={"request": request}).data)

    @extend_schema(
        operation_id="reports_create",
        request=ReportCreateInput,
        responses={202: ReportOutput, 400: PROBLEM, 403: PROBLEM, 404: PROBLEM},
    )
    def post(self, request):
        data = ReportCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        report = services.report_request(
            actor=request.principal,
            kind=data.validated_data["kind"],
            release_id=data.validated_data.get("release"),
            model_name=data.validated_data.get("model", ""),
            team_name=data.validated_data.get("team", ""),
            review_id=data.validated_data.get("review"),
            filters=data.validated_data.get("filters"),
            since=data.validated_data.get("since"),
            until=data.validated_data.get("until"),
            formats=data.validated_data.get("formats"),
        )
        body = ReportOutput(report, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})


class ReportDetailApi(GenericAPIView):
    """One report: its status and progress while it is generated, then its files (`reports.view`)."""

    serializer_class = ReportOutput

    @extend_schema(
        operation_id="reports_retrieve",
        parameters=[_REPORT_ID],
        responses={200: ReportOutput, 403: PROBLEM, 404: PROBLEM},
    )
    def get(self, request, report_id):
        report = selectors.report_get(actor=request.principal, report_id=report_id)
        return Response(ReportOutput(report, context={"request": request}).data)


class ReportDownloadApi(GenericAPIView):
    """Download one of a report's files: audited (`report.downloaded`), then 303 to a link for you alone."""

    serializer_class = None

    @extend_schema(
        operation_id="reports_download",
        parameters=[_REPORT_ID, OpenApiParameter("fmt", str, OpenApiParameter.PATH, enum=["pdf", "html", "pack"])],
        request=None,
        responses=_LINK_RESPONSES,
    )
    def post(self, request, report_id, fmt: str):
        link = services.report_download_start(actor=request.principal, report_id=report_id, fmt=fmt)
        return link_response(request, link)


class ReportFileApi(GenericAPIView):
    """Follow a report download link: the bytes, verified against their recorded SHA-256. Writes nothing."""

    renderer_classes = [JSONRenderer, _AnyMediaType]
    serializer_class = None

    @extend_schema(
        operation_id="reports_file",
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, 403: PROBLEM, 404: PROBLEM, 410: PROBLEM},
    )
    def get(self, request, token: str):
        return download_response(downloads.report_download_open(actor=request.principal, token=token))


class CertificateApi(GenericAPIView):
    """The certificate that signs report PDFs (PEM), to check a PDF's signature with (`reports.view`)."""

    renderer_classes = [JSONRenderer, _AnyMediaType]
    serializer_class = None

    @extend_schema(
        operation_id="reports_certificate",
        responses={(200, "application/x-pem-file"): OpenApiResponse(OpenApiTypes.STR), 403: PROBLEM, 404: PROBLEM},
    )
    def get(self, request):
        selectors.certificate_check(actor=request.principal)
        try:
            pem = certificate.certificate_pem()
        except certificate.ReportSignerMissing:
            raise NotFound("This installation has no report certificate yet: no report has been signed.") from None
        response = HttpResponse(pem, content_type="application/x-pem-file")
        response["Content-Disposition"] = 'attachment; filename="assay-report-signing.crt"'
        response["X-Certificate-SHA256"] = certificate.certificate_fingerprint()
        return response


_REVIEW_ID = OpenApiParameter("review_id", OpenApiTypes.UUID, OpenApiParameter.PATH)


class AccessReviewListApi(GenericAPIView):
    """Access reviews, newest first (reviewers, auditors, admins); POST starts one over every grant in scope."""

    serializer_class = AccessReviewOutput

    @extend_schema(operation_id="access_reviews_list", responses={200: AccessReviewOutput(many=True), 403: PROBLEM})
    def get(self, request):
        page = self.paginate_queryset(reviews.review_list(actor=request.principal).prefetch_related("items"))
        return self.get_paginated_response(AccessReviewOutput(page, many=True).data)

    @extend_schema(
        operation_id="access_reviews_create",
        request=AccessReviewStartInput,
        responses={201: AccessReviewOutput, 400: PROBLEM, 403: PROBLEM, 404: PROBLEM},
    )
    def post(self, request):
        data = AccessReviewStartInput(data=request.data)
        data.is_valid(raise_exception=True)
        review = reviews.access_review_start(
            actor=request.principal,
            team_name=data.validated_data.get("team", ""),
            title=data.validated_data.get("title", ""),
        )
        return Response(AccessReviewOutput(review).data, status=status.HTTP_201_CREATED)


class AccessReviewDetailApi(GenericAPIView):
    """One access review with every grant and its decision."""

    serializer_class = AccessReviewOutput

    @extend_schema(
        operation_id="access_reviews_retrieve",
        parameters=[_REVIEW_ID],
        responses={200: AccessReviewOutput, 403: PROBLEM, 404: PROBLEM},
    )
    def get(self, request, review_id):
        return Response(AccessReviewOutput(reviews.review_get(actor=request.principal, review_id=review_id)).data)


class AccessReviewDecideApi(GenericAPIView):
    """Attest or revoke one grant (a reason is required to revoke; never your own grant). Audited."""

    serializer_class = AccessReviewItemOutput

    @extend_schema(
        operation_id="access_reviews_decide",
        parameters=[_REVIEW_ID, OpenApiParameter("item_id", OpenApiTypes.INT, OpenApiParameter.PATH)],
        request=AccessReviewDecideInput,
        responses={200: AccessReviewItemOutput, 400: PROBLEM, 403: PROBLEM, 404: PROBLEM, 409: PROBLEM},
    )
    def post(self, request, review_id, item_id: int):
        data = AccessReviewDecideInput(data=request.data)
        data.is_valid(raise_exception=True)
        item = reviews.access_review_decide(
            actor=request.principal,
            review_id=review_id,
            item_id=item_id,
            decision=data.validated_data["decision"],
            reason=data.validated_data.get("reason", ""),
        )
        return Response(AccessReviewItemOutput(item).data)


class AccessReviewCloseApi(GenericAPIView):
    """Close a review once every grant is attested or revoked (409 naming how many are pending). Audited."""

    serializer_class = AccessReviewOutput

    @extend_schema(
        operation_id="access_reviews_close",
        parameters=[_REVIEW_ID],
        request=None,
        responses={200: AccessReviewOutput, 403: PROBLEM, 404: PROBLEM, 409: PROBLEM},
    )
    def post(self, request, review_id):
        return Response(
            AccessReviewOutput(reviews.access_review_close(actor=request.principal, review_id=review_id)).data
        )


class ScheduleListApi(GenericAPIView):
    """Scheduled reports in your scope; POST schedules a period or model report every week or month
    (`reports.schedule`: compliance officers and admins)."""

    serializer_class = ScheduleOutput

    @extend_schema(operation_id="report_schedules_list", responses={200: ScheduleOutput(many=True), 403: PROBLEM})
    def get(self, request):
        page = self.paginate_queryset(schedules.schedule_list(actor=request.principal))
        return self.get_paginated_response(ScheduleOutput(page, many=True).data)

    @extend_schema(
        operation_id="report_schedules_create",
        request=ScheduleInput,
        responses={201: ScheduleOutput, 400: PROBLEM, 403: PROBLEM, 404: PROBLEM},
    )
    def post(self, request):
        data = ScheduleInput(data=request.data)
        data.is_valid(raise_exception=True)
        schedule = schedules.schedule_create(
            actor=request.principal,
            kind=data.validated_data["kind"],
            cadence=data.validated_data["cadence"],
            team_name=data.validated_data.get("team", ""),
            model_name=data.validated_data.get("model", ""),
            formats=data.validated_data.get("formats"),
        )
        return Response(ScheduleOutput(schedule).data, status=status.HTTP_201_CREATED)


class ScheduleDetailApi(GenericAPIView):
    """Stop a schedule (the reports it made stay)."""

    serializer_class = None

    @extend_schema(
        operation_id="report_schedules_destroy",
        parameters=[OpenApiParameter("schedule_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        responses={204: None, 403: PROBLEM, 404: PROBLEM},
    )
    def delete(self, request, schedule_id):
        schedules.schedule_delete(actor=request.principal, schedule_id=schedule_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
