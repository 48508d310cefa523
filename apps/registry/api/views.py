"""Registry API: thin views over the registry's selectors and services."""

from __future__ import annotations

import base64

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from apps.core.api.params import query_choice
from apps.core.parsers import JSONParser
from apps.registry import downloads, selectors, services
from apps.registry.choices import DataCategory, FactsChangeStatus, RiskTier

from .serializers import (
    DatasetCreateInput,
    DatasetOutput,
    DatasetReferenceInput,
    DatasetUploadInput,
    DownloadLinkOutput,
    FactsChangeCancelInput,
    FactsChangeDecisionInput,
    FactsChangeOutput,
    ModelCreateInput,
    ModelOutput,
    ModelUpdateInput,
    ModelUpdateOutput,
    VersionCreateInput,
    VersionOutput,
    VersionReferenceInput,
    VersionRetireInput,
    VersionUploadInput,
)

PROBLEM = OpenApiResponse(description="Problem details (application/problem+json).")
_REFUSALS = {400: PROBLEM, 401: PROBLEM, 403: PROBLEM, 404: PROBLEM}
_UPLOAD_REFUSALS = {**_REFUSALS, 409: PROBLEM, 413: PROBLEM, 415: PROBLEM}


def _created(request, body: dict) -> Response:
    return Response(body, status=status.HTTP_201_CREATED, headers={"Location": body["url"]})


def _without_blanks(data: dict, *keys: str) -> dict:
    return {k: v for k, v in data.items() if not (k in keys and v in ("", None))}


class ModelListCreateApi(GenericAPIView):
    """``GET``: models you may see (paginated, filterable). ``POST``: register a model for a team."""

    serializer_class = ModelOutput

    @extend_schema(
        operation_id="models_list",
        parameters=[
            OpenApiParameter("search", str, description="Substring of the name or description."),
            OpenApiParameter("team", str, description="Owning team's name."),
            OpenApiParameter("risk_tier", str, enum=RiskTier.values),
            OpenApiParameter("data_category", str, enum=DataCategory.values),
        ],
        responses={200: ModelOutput(many=True), 401: PROBLEM},
    )
    def get(self, request):
        params = request.query_params
        models = selectors.model_list(
            actor=request.principal,
            search=params.get("search", ""),
            team=params.get("team", ""),
            risk_tier=query_choice(request, "risk_tier", RiskTier.values),
            data_category=query_choice(request, "data_category", DataCategory.values),
        )
        page = self.paginate_queryset(models)
        return self.get_paginated_response(ModelOutput(page, many=True, context={"request": request}).data)

    @extend_schema(
        operation_id="models_create", request=ModelCreateInput, responses={201: ModelOutput, 409: PROBLEM, **_REFUSALS}
    )
    def post(self, request):
        data = ModelCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        model = services.model_create(actor=request.principal, **data.validated_data)
        return _created(request, ModelOutput(model, context={"request": request}).data)


class ModelDetailApi(GenericAPIView):
    """``GET``: one model. ``PATCH``: change its descriptive fields (its name never changes)."""

    serializer_class = ModelOutput

    @extend_schema(operation_id="models_retrieve", responses={200: ModelOutput, 401: PROBLEM, 404: PROBLEM})
    def get(self, request, name: str):
        model = selectors.model_get(actor=request.principal, name=name)
        return Response(ModelOutput(model, context={"request": request}).data)

    @extend_schema(
        operation_id="models_update",
        request=ModelUpdateInput,
        responses={200: ModelUpdateOutput, 202: ModelUpdateOutput, 409: PROBLEM, **_REFUSALS},
    )
    def patch(self, request, name: str):
        """200 when every change applied; 202 when some loosen the model's policy facts and wait for a
        compliance officer (``update.pending``, and ``Location`` is the pending change's URL)."""
        data = ModelUpdateInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        reason = changes.pop("reason", "")
        result = services.model_update(actor=request.principal, name=name, changes=changes, reason=reason)
        model = selectors.model_get(actor=request.principal, name=name)
        body = ModelUpdateOutput(model, context={"request": request, "update": result}).data
        if result.facts_change is None:
            return Response(body)
        change_url = body["update"]["facts_change"]["url"]
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": change_url})


class VersionListCreateApi(GenericAPIView):
    """``GET``: a model's versions, newest first. ``POST``: register the next version.

    Multipart with an ``artifact`` file, or JSON with an ``artifact_uri`` (``s3://``
    in an allowed bucket) or ``format: predictions_only`` with an evaluation dataset.
    The same artifact registered twice is a 409 naming the existing version.
    """

    serializer_class = VersionOutput
    parser_classes = [MultiPartParser, JSONParser, FormParser]

    @extend_schema(
        operation_id="models_versions_list", responses={200: VersionOutput(many=True), 401: PROBLEM, 404: PROBLEM}
    )
    def get(self, request, name: str):
        model = selectors.model_get(actor=request.principal, name=name)
        page = self.paginate_queryset(selectors.version_list(actor=request.principal, model=model))
        return self.get_paginated_response(VersionOutput(page, many=True, context={"request": request}).data)

    @extend_schema(
        operation_id="models_versions_create",
        request={"multipart/form-data": VersionUploadInput, "application/json": VersionReferenceInput},
        responses={201: VersionOutput, **_UPLOAD_REFUSALS},
    )
    def post(self, request, name: str):
        validated = VersionCreateInput.fast_validated(request.data)  # a plain JSON body; else DRF's checks
        if validated is None:
            data = VersionCreateInput(data=request.data)
            data.is_valid(raise_exception=True)
            validated = data.validated_data
        values = _without_blanks(validated, "format", "sha256", "artifact_uri")
        version = services.version_create(
            actor=request.principal,
            model_name=name,
            artifact=values.get("artifact"),
            artifact_uri=values.get("artifact_uri", ""),
            sha256=values.get("sha256", ""),
            format=values.get("format", ""),
            description=values.get("description", ""),
            metrics=values.get("metrics"),
            source_repository=values.get("source_repository", ""),
            source_commit=values.get("source_commit", ""),
            ci_run_url=values.get("ci_run_url", ""),
            training_dataset_ids=values.get("training_datasets", []),
            evaluation_dataset_id=values.get("evaluation_dataset"),
            model_card=values.get("model_card"),
        )
        # The service returns the version with its model, job and datasets attached: no second read.
        if version.created_by_id == getattr(request.user, "pk", None):
            version.created_by = request.user
        return _created(request, VersionOutput(version, context={"request": request}).data)


class VersionDetailApi(GenericAPIView):
    """One version: sha256, size, format, status, metrics, lineage, model card, author and verification progress."""

    serializer_class = VersionOutput

    @extend_schema(operation_id="models_versions_retrieve", responses={200: VersionOutput, 401: PROBLEM, 404: PROBLEM})
    def get(self, request, name: str, number: int):
        version = selectors.version_get(actor=request.principal, model_name=name, number=number)
        context = {"request": request, "accuracy_actor": request.principal}
        return Response(VersionOutput(version, context=context).data)


class VersionRetireApi(GenericAPIView):
    """Retire a version: it stays on record, marked retired."""

    serializer_class = VersionOutput

    @extend_schema(
        operation_id="models_versions_retire",
        request=VersionRetireInput,
        responses={200: VersionOutput, 409: PROBLEM, **_REFUSALS},
    )
    def post(self, request, name: str, number: int):
        data = VersionRetireInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.version_retire(
            actor=request.principal, model_name=name, number=number, reason=data.validated_data["reason"]
        )
        version = selectors.version_get(actor=request.principal, model_name=name, number=number)
        return Response(VersionOutput(version, context={"request": request}).data)


class VersionVerifyApi(GenericAPIView):
    """Verify a version again after its verification job failed without deciding it (storage unreachable, ...)."""

    serializer_class = VersionOutput

    @extend_schema(
        operation_id="models_versions_verify",
        request=None,
        responses={202: VersionOutput, 401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 409: PROBLEM},
    )
    def post(self, request, name: str, number: int):
        services.version_reverify(actor=request.principal, model_name=name, number=number)
        version = selectors.version_get(actor=request.principal, model_name=name, number=number)
        return Response(VersionOutput(version, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)


class DatasetListCreateApi(GenericAPIView):
    """``GET``: datasets you may see. ``POST``: register one (multipart ``file`` or JSON ``uri``)."""

    serializer_class = DatasetOutput
    parser_classes = [MultiPartParser, JSONParser, FormParser]

    @extend_schema(
        operation_id="datasets_list",
        parameters=[
            OpenApiParameter("search", str, description="Substring of the name."),
            OpenApiParameter("team", str, description="Owning team's name."),
        ],
        responses={200: DatasetOutput(many=True), 401: PROBLEM},
    )
    def get(self, request):
        datasets = selectors.dataset_list(
            actor=request.principal,
            search=request.query_params.get("search", ""),
            team=request.query_params.get("team", ""),
        )
        page = self.paginate_queryset(datasets)
        return self.get_paginated_response(DatasetOutput(page, many=True, context={"request": request}).data)

    @extend_schema(
        operation_id="datasets_create",
        request={"multipart/form-data": DatasetUploadInput, "application/json": DatasetReferenceInput},
        responses={201: DatasetOutput, **_UPLOAD_REFUSALS},
    )
    def post(self, request):
        data = DatasetCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = _without_blanks(data.validated_data, "format", "sha256", "uri")
        dataset = services.dataset_create(
            actor=request.principal,
            name=values["name"],
            owner_team=values["owner_team"],
            file=values.get("file"),
            uri=values.get("uri", ""),
            format=values.get("format", ""),
            schema=values.get("schema"),
            description=values.get("description", ""),
            sha256=values.get("sha256", ""),
            source_id=values.get("source"),
        )
        dataset = selectors.dataset_get(actor=request.principal, dataset_id=dataset.pk)
        return _created(request, DatasetOutput(dataset, context={"request": request}).data)


class DatasetDetailApi(GenericAPIView):
    """One dataset."""

    serializer_class = DatasetOutput

    @extend_schema(
        operation_id="datasets_retrieve",
        parameters=[OpenApiParameter("dataset_id", OpenApiTypes.INT, OpenApiParameter.PATH)],
        responses={200: DatasetOutput, 401: PROBLEM, 404: PROBLEM},
    )
    def get(self, request, dataset_id: int):
        dataset = selectors.dataset_get(actor=request.principal, dataset_id=dataset_id)
        return Response(DatasetOutput(dataset, context={"request": request}).data)


class DatasetVerifyApi(GenericAPIView):
    """Verify a dataset again after its verification job failed without deciding it (storage unreachable, ...)."""

    serializer_class = DatasetOutput

    @extend_schema(
        operation_id="datasets_verify",
        parameters=[OpenApiParameter("dataset_id", OpenApiTypes.INT, OpenApiParameter.PATH)],
        request=None,
        responses={202: DatasetOutput, 401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 409: PROBLEM},
    )
    def post(self, request, dataset_id: int):
        services.dataset_reverify(actor=request.principal, dataset_id=dataset_id)
        dataset = selectors.dataset_get(actor=request.principal, dataset_id=dataset_id)
        return Response(DatasetOutput(dataset, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)


class FactsChangeListApi(GenericAPIView):
    """Changes of models' policy facts you may see, newest first; ``?status=pending`` for those waiting."""

    serializer_class = FactsChangeOutput

    @extend_schema(
        operation_id="facts_changes_list",
        parameters=[
            OpenApiParameter("model", str, description="The model's name."),
            OpenApiParameter("status", str, enum=FactsChangeStatus.values),
        ],
        responses={200: FactsChangeOutput(many=True), 401: PROBLEM},
    )
    def get(self, request):
        changes = selectors.facts_change_list(
            actor=request.principal,
            model=request.query_params.get("model", ""),
            status=query_choice(request, "status", FactsChangeStatus.values),
        )
        page = self.paginate_queryset(changes)
        return self.get_paginated_response(FactsChangeOutput(page, many=True, context={"request": request}).data)


_CHANGE_ID = OpenApiParameter("change_id", OpenApiTypes.UUID, OpenApiParameter.PATH)


class FactsChangeDetailApi(GenericAPIView):
    """One facts change: before and after per field, proposer and reason, decision."""

    serializer_class = FactsChangeOutput

    @extend_schema(
        operation_id="facts_changes_retrieve",
        parameters=[_CHANGE_ID],
        responses={200: FactsChangeOutput, 401: PROBLEM, 404: PROBLEM},
    )
    def get(self, request, change_id):
        change = selectors.facts_change_get(actor=request.principal, change_id=change_id)
        return Response(FactsChangeOutput(change, context={"request": request}).data)


class _FactsChangeCommand(GenericAPIView):
    serializer_class = FactsChangeOutput
    input_class = FactsChangeDecisionInput
    service = None

    def post(self, request, change_id):
        data = self.input_class(data=request.data)
        data.is_valid(raise_exception=True)
        type(self).service(actor=request.principal, change_id=change_id, reason=data.validated_data["reason"])
        change = selectors.facts_change_get(actor=request.principal, change_id=change_id)
        return Response(FactsChangeOutput(change, context={"request": request}).data)


class FactsChangeApproveApi(_FactsChangeCommand):
    """Approve a pending change (``registry.approve_facts``; never the proposer, never an auditor): it applies
    if the model still holds the values it was proposed against (else 409, nothing applied)."""

    service = services.facts_change_approve

    @extend_schema(
        operation_id="facts_changes_approve",
        parameters=[_CHANGE_ID],
        request=FactsChangeDecisionInput,
        responses={200: FactsChangeOutput, 409: PROBLEM, **_REFUSALS},
    )
    def post(self, request, change_id):
        return super().post(request, change_id)


class FactsChangeRejectApi(_FactsChangeCommand):
    """Reject a pending change (``registry.approve_facts``; never the proposer, never an auditor)."""

    service = services.facts_change_reject

    @extend_schema(
        operation_id="facts_changes_reject",
        parameters=[_CHANGE_ID],
        request=FactsChangeDecisionInput,
        responses={200: FactsChangeOutput, 409: PROBLEM, **_REFUSALS},
    )
    def post(self, request, change_id):
        return super().post(request, change_id)


class FactsChangeCancelApi(_FactsChangeCommand):
    """Withdraw a pending change (the model's team, ``registry.model_edit``)."""

    service = services.facts_change_cancel
    input_class = FactsChangeCancelInput

    @extend_schema(
        operation_id="facts_changes_cancel",
        parameters=[_CHANGE_ID],
        request=FactsChangeCancelInput,
        responses={200: FactsChangeOutput, 409: PROBLEM, **_REFUSALS},
    )
    def post(self, request, change_id):
        return super().post(request, change_id)


# --- downloads: a POST that is audited and answers a signed link; a GET of the link that streams the bytes

_LINK_RESPONSES = {
    303: OpenApiResponse(
        DownloadLinkOutput, description="See Other: ``Location`` (and ``url``) is the link to follow, for the caller."
    ),
    401: PROBLEM,
    403: PROBLEM,
    404: PROBLEM,
    409: PROBLEM,
}


def link_response(request, link: downloads.DownloadLink) -> Response:
    """303 See Other to the signed link, which the body also carries with its expiry."""
    url = request.build_absolute_uri(link.url)
    body = DownloadLinkOutput(
        {"url": url, "expires_at": link.expires_at, "filename": link.filename, "sha256": link.sha256, "size": link.size}
    ).data
    response = Response(body, status=status.HTTP_303_SEE_OTHER, headers={"Location": url})
    response["Cache-Control"] = "no-store"
    return response


def download_response(download: downloads.Download) -> StreamingHttpResponse:
    """The bytes as an attachment, streamed in chunks, with their length, type and recorded SHA-256."""
    response = StreamingHttpResponse(download.chunks, content_type=download.content_type)
    response["Content-Length"] = str(download.size)
    response["Content-Disposition"] = f'attachment; filename="{download.filename}"'
    response["X-Checksum-SHA256"] = download.sha256
    response["Digest"] = "sha-256=" + base64.b64encode(bytes.fromhex(download.sha256)).decode()
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


class VersionArtifactDownloadApi(GenericAPIView):
    """Download a verified version's artifact: audited, then 303 See Other to a link valid for the caller
    alone for a few minutes (``curl -L`` with the same token follows it). Needs ``registry.download``."""

    serializer_class = DownloadLinkOutput

    @extend_schema(operation_id="models_versions_artifact_download", request=None, responses=_LINK_RESPONSES)
    def post(self, request, name: str, number: int):
        link = services.version_artifact_download(actor=request.principal, model_name=name, number=number)
        return link_response(request, link)


class DatasetDownloadApi(GenericAPIView):
    """Download a verified dataset: audited, then 303 See Other to a link valid for the caller alone for a
    few minutes. Needs ``registry.download``."""

    serializer_class = DownloadLinkOutput

    @extend_schema(
        operation_id="datasets_download",
        parameters=[OpenApiParameter("dataset_id", OpenApiTypes.INT, OpenApiParameter.PATH)],
        request=None,
        responses=_LINK_RESPONSES,
    )
    def post(self, request, dataset_id: int):
        link = services.dataset_download(actor=request.principal, dataset_id=dataset_id)
        return link_response(request, link)


class _AnyMediaType(BaseRenderer):
    """Lets a download be asked for with any ``Accept`` header (the bytes are streamed, never rendered)."""

    media_type = "*/*"
    format = "download"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data


class DownloadApi(GenericAPIView):
    """Follow a download link: the bytes, streamed, if the link is yours, unexpired and unaltered and you
    still hold ``registry.download``. Writes nothing (a refusal of a person is recorded as a denial)."""

    renderer_classes = [JSONRenderer, _AnyMediaType]

    @extend_schema(
        operation_id="downloads_retrieve",
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            401: PROBLEM,
            403: PROBLEM,
            404: PROBLEM,
            409: PROBLEM,
            410: PROBLEM,
        },
    )
    def get(self, request, token: str):
        return download_response(downloads.download_open(actor=request.principal, token=token))
