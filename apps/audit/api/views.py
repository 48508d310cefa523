"""Audit API: list with filters, verifiable exports, chain verification. Thin: parse, call, render."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param
from rest_framework.views import APIView

from apps.core.api.params import query_choice

from .. import exports, selectors, trail
from ..choices import Outcome
from ..filters import parse_filters
from .serializers import (
    AuditEventSerializer,
    ConsistencyProofSerializer,
    InclusionProofSerializer,
    SignedHeadSerializer,
    VerifySerializer,
)

FILTER_PARAMETERS = [
    OpenApiParameter("actor", str, description="Actor name, or `type:id` (e.g. `user:7`, `service_account:3`)."),
    OpenApiParameter("action", str, description="Exact action, or a prefix ending in `*` (e.g. `model.*`)."),
    OpenApiParameter("outcome", str, enum=Outcome.values),
    OpenApiParameter("target_type", str),
    OpenApiParameter("target_id", str),
    OpenApiParameter("target", str, description="Shorthand for both: `model` or `model:42`."),
    # Strings, not date-times: a date alone is taken too, and an empty value means no bound.
    OpenApiParameter(
        "related",
        str,
        description="Everything about one subject: `model:<name>` (its versions, evidence, releases, approvals, "
        "deployments and their jobs), `version:<model>:<number>`, `release:<id>`, `deployment:<id>`, "
        "`person:<username>` (what they did, and changes to their account), `token:<token id>`, `team:<name>` (its "
        "members, bindings, service accounts, models and datasets). "
        "An unknown subject is a 400.",
    ),
    OpenApiParameter("since", str, description="ISO 8601 date-time or date, inclusive; a date means its start."),
    OpenApiParameter("until", str, description="ISO 8601 date-time or date, exclusive; a date includes that day."),
]


KEYSET_PARAMETERS = [
    OpenApiParameter(
        "before", int, description="Events older than this sequence number (the `next` link of a keyset page)."
    ),
    OpenApiParameter("after", int, description="Events newer than this sequence number (the `previous` link)."),
]


class EventListView(ListAPIView):
    """The audit trail, newest first, filtered. Needs the global `audit.view` permission.

    Paged by sequence number: `next` asks for the events `before` the page's oldest, `previous`
    for those `after` its newest, so every page costs the same however long the trail. `?page=`
    still pages by number (a page deep in a long trail costs more).
    """

    serializer_class = AuditEventSerializer

    def get_queryset(self):
        # parse_filters takes an empty outcome (the dashboard form sends one); the API publishes the choices.
        query_choice(self.request, "outcome", Outcome.values)
        return selectors.event_list(actor=self.request.principal, filters=parse_filters(self.request.query_params))

    @extend_schema(parameters=[*FILTER_PARAMETERS, *KEYSET_PARAMETERS], operation_id="audit_events_list")
    def get(self, request, *args, **kwargs):
        if "page" in request.query_params:
            return super().get(request, *args, **kwargs)
        query_choice(request, "outcome", Outcome.values)
        params = request.query_params
        page = selectors.event_page(
            actor=request.principal,
            filters=parse_filters(params),
            before=params.get("before"),
            after=params.get("after"),
            size=self.paginator.get_page_size(request),
        )
        url = request.build_absolute_uri()
        return Response(
            {
                "count": page.total.value,
                "count_exact": page.total.exact,
                "next": None
                if page.older is None
                else replace_query_param(remove_query_param(url, "after"), "before", page.older),
                "previous": None
                if page.newer is None
                else replace_query_param(remove_query_param(url, "before"), "after", page.newer),
                "results": self.get_serializer(page.events, many=True).data,
            }
        )


class ExportView(APIView):
    """Download the (filtered) trail as CSV or as JSON Lines with the chain hashes. Needs `audit.export`.

    The export is itself audited (`audit.exported`, with the filters and the row count).
    """

    def perform_content_negotiation(self, request, force=False):
        # ?format= names the export format here, not a DRF renderer; errors stay JSON (problem+json).
        return (JSONRenderer(), JSONRenderer.media_type)

    @extend_schema(
        parameters=[
            OpenApiParameter("format", str, enum=list(exports.FORMATS), default="jsonl"),
            *FILTER_PARAMETERS,
        ],
        responses={
            (200, "application/jsonl"): OpenApiResponse(OpenApiTypes.STR, description="One event per line."),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="A header row, then one event a row."),
        },
        operation_id="audit_export",
    )
    def get(self, request):
        query_choice(request, "outcome", Outcome.values)
        filters = parse_filters(request.query_params)
        fmt = (request.query_params.get("format") or "jsonl").strip().lower()
        plan = trail.export_start(actor=request.principal, filters=filters, fmt=fmt)
        return exports.streaming_response(plan.format, plan.filters, up_to_seq=plan.up_to_seq)


class VerifyView(APIView):
    """Seal pending events and verify the whole chain against the signed checkpoints. Needs `audit.view`.

    Always 200: `ok` says whether the trail is intact, `first_bad_seq` and `problems` say where and why not.
    """

    @extend_schema(responses=VerifySerializer, operation_id="audit_verify")
    def get(self, request):
        result = trail.trail_verify(actor=request.principal)
        return Response(VerifySerializer(result.as_dict()).data)


class CheckpointView(APIView):
    """The newest signed tree head (chain head and Merkle root, signed), and the keys that verify it. `audit.view`."""

    @extend_schema(responses=SignedHeadSerializer, operation_id="audit_checkpoint_latest")
    def get(self, request):
        head = trail.checkpoint_latest(actor=request.principal)
        return Response(SignedHeadSerializer(head).data)


class ConsistencyProofView(APIView):
    """An RFC 9162 consistency proof between two tree sizes: the log of `to` events extends the log of `from`.

    `to` defaults to the newest signed tree head. Needs `audit.view`.
    """

    @extend_schema(
        parameters=[
            OpenApiParameter("from", int, required=True, description="The older tree size (a checkpoint you hold)."),
            OpenApiParameter("to", int, description="The newer tree size; default: the newest signed tree head."),
        ],
        responses=ConsistencyProofSerializer,
        operation_id="audit_proof_consistency",
    )
    def get(self, request):
        params = request.query_params
        proof = trail.proof_consistency(actor=request.principal, old=params.get("from"), new=params.get("to"))
        return Response(ConsistencyProofSerializer(proof).data)


class InclusionProofView(APIView):
    """An RFC 9162 inclusion proof: event `seq` is leaf `seq - 1` of the tree of `tree_size` events. `audit.view`."""

    @extend_schema(
        parameters=[
            OpenApiParameter("seq", int, required=True),
            OpenApiParameter("tree_size", int, description="Default: the newest signed tree head holding the event."),
        ],
        responses=InclusionProofSerializer,
        operation_id="audit_proof_inclusion",
    )
    def get(self, request):
        params = request.query_params
        proof = trail.proof_inclusion(actor=request.principal, seq=params.get("seq"), size=params.get("tree_size"))
        return Response(InclusionProofSerializer(proof).data)
