"""Webhook API: thin views over the notifications selectors and services."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from apps.core.errors import NotFound
from apps.notifications import selectors, services

from .serializers import (
    AllowedHostInput,
    AllowedHostOutput,
    DeliveryOutput,
    WebhookCreateInput,
    WebhookOutput,
    WebhookUpdateInput,
    WebhookWithSecretOutput,
)

PROBLEM = OpenApiResponse(description="Problem details (application/problem+json).")
_REFUSALS = {400: PROBLEM, 401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 409: PROBLEM}
_WEBHOOK_ID = OpenApiParameter("webhook_id", OpenApiTypes.UUID, OpenApiParameter.PATH)
_DELIVERY_ID = OpenApiParameter("delivery_id", OpenApiTypes.UUID, OpenApiParameter.PATH)


def _with_secret(request, webhook, secret: str, code: int) -> Response:
    body = WebhookWithSecretOutput(webhook, context={"request": request, "secret": secret}).data
    response = Response(body, status=code)
    response["Cache-Control"] = "no-store"
    return response


class TeamWebhooksApi(GenericAPIView):
    """``GET``: a team's webhooks. ``POST``: a new webhook; the response carries its signing secret, once."""

    serializer_class = WebhookOutput

    @extend_schema(
        operation_id="team_webhooks_list", responses={200: WebhookOutput(many=True), 401: PROBLEM, 404: PROBLEM}
    )
    def get(self, request, name: str):
        team = selectors.team_get(actor=request.principal, name=name)
        page = self.paginate_queryset(selectors.webhook_list(actor=request.principal, team=team))
        return self.get_paginated_response(WebhookOutput(page, many=True, context={"request": request}).data)

    @extend_schema(
        operation_id="team_webhooks_create",
        request=WebhookCreateInput,
        responses={201: WebhookWithSecretOutput, **_REFUSALS},
    )
    def post(self, request, name: str):
        team = selectors.team_get(actor=request.principal, name=name, permission="notifications.manage")
        data = WebhookCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        webhook, secret = services.webhook_create(actor=request.principal, team=team, **data.validated_data)
        return _with_secret(request, webhook, secret, status.HTTP_201_CREATED)


class WebhookDetailApi(GenericAPIView):
    """``GET`` one webhook (never its secret), ``PATCH`` its URL, events, description or active flag, ``DELETE`` it."""

    serializer_class = WebhookOutput

    @extend_schema(
        operation_id="webhooks_retrieve",
        parameters=[_WEBHOOK_ID],
        responses={200: WebhookOutput, 401: PROBLEM, 404: PROBLEM},
    )
    def get(self, request, webhook_id):
        webhook = selectors.webhook_get(actor=request.principal, webhook_id=webhook_id)
        return Response(WebhookOutput(webhook, context={"request": request}).data)

    @extend_schema(
        operation_id="webhooks_update",
        parameters=[_WEBHOOK_ID],
        request=WebhookUpdateInput,
        responses={200: WebhookOutput, **_REFUSALS},
    )
    def patch(self, request, webhook_id):
        data = WebhookUpdateInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        services.webhook_update(actor=request.principal, webhook_id=webhook_id, **data.validated_data)
        webhook = selectors.webhook_get(actor=request.principal, webhook_id=webhook_id)
        return Response(WebhookOutput(webhook, context={"request": request}).data)

    @extend_schema(operation_id="webhooks_destroy", parameters=[_WEBHOOK_ID], responses={204: None, **_REFUSALS})
    def delete(self, request, webhook_id):
        services.webhook_delete(actor=request.principal, webhook_id=webhook_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookRotateSecretApi(GenericAPIView):
    """Replace the webhook's signing secret now; the response carries the new one, once."""

    serializer_class = WebhookWithSecretOutput

    @extend_schema(
        operation_id="webhooks_rotate_secret",
        parameters=[_WEBHOOK_ID],
        request=None,
        responses={200: WebhookWithSecretOutput, **_REFUSALS},
    )
    def post(self, request, webhook_id):
        webhook, secret = services.webhook_secret_rotate(actor=request.principal, webhook_id=webhook_id)
        return _with_secret(request, webhook, secret, status.HTTP_200_OK)


class WebhookTestApi(GenericAPIView):
    """Send a ``ping`` event to the webhook (202 and the delivery, to follow under its deliveries)."""

    serializer_class = DeliveryOutput

    @extend_schema(
        operation_id="webhooks_test",
        parameters=[_WEBHOOK_ID],
        request=None,
        responses={202: DeliveryOutput, **_REFUSALS},
    )
    def post(self, request, webhook_id):
        delivery = services.webhook_ping(actor=request.principal, webhook_id=webhook_id)
        return Response(DeliveryOutput(delivery).data, status=status.HTTP_202_ACCEPTED)


class WebhookDeliveriesApi(GenericAPIView):
    """A webhook's deliveries, newest first, each with its attempts (status, duration, response excerpt, error)."""

    serializer_class = DeliveryOutput

    @extend_schema(
        operation_id="webhooks_deliveries_list",
        parameters=[_WEBHOOK_ID],
        responses={200: DeliveryOutput(many=True), 401: PROBLEM, 404: PROBLEM},
    )
    def get(self, request, webhook_id):
        webhook = selectors.webhook_get(actor=request.principal, webhook_id=webhook_id)
        page = self.paginate_queryset(selectors.delivery_list(webhook=webhook))
        return self.get_paginated_response(DeliveryOutput(page, many=True).data)


class WebhookRedeliverApi(GenericAPIView):
    """Send a finished delivery again (same id and body, so receivers can deduplicate); 409 while unfinished."""

    serializer_class = DeliveryOutput

    @extend_schema(
        operation_id="webhooks_deliveries_redeliver",
        parameters=[_WEBHOOK_ID, _DELIVERY_ID],
        request=None,
        responses={202: DeliveryOutput, **_REFUSALS},
    )
    def post(self, request, webhook_id, delivery_id):
        delivery = services.delivery_redeliver(actor=request.principal, webhook_id=webhook_id, delivery_id=delivery_id)
        return Response(DeliveryOutput(delivery).data, status=status.HTTP_202_ACCEPTED)


class AllowedHostsApi(GenericAPIView):
    """``GET``: hosts exempt from the SSRF guard (admins, auditors). ``POST``: allow one (global admins)."""

    serializer_class = AllowedHostOutput

    @extend_schema(
        operation_id="webhook_allowed_hosts_list",
        responses={200: AllowedHostOutput(many=True), 401: PROBLEM, 403: PROBLEM},
    )
    def get(self, request):
        page = self.paginate_queryset(selectors.allowed_host_list(actor=request.principal))
        return self.get_paginated_response(AllowedHostOutput(page, many=True).data)

    @extend_schema(
        operation_id="webhook_allowed_hosts_create",
        request=AllowedHostInput,
        responses={201: AllowedHostOutput, **_REFUSALS},
    )
    def post(self, request):
        data = AllowedHostInput(data=request.data)
        data.is_valid(raise_exception=True)
        allowed = services.allowed_host_create(actor=request.principal, **data.validated_data)
        return Response(AllowedHostOutput(allowed).data, status=status.HTTP_201_CREATED)


class AllowedHostDetailApi(GenericAPIView):
    """``DELETE``: withdraw a host's allowance (global admins)."""

    serializer_class = AllowedHostOutput

    @extend_schema(
        operation_id="webhook_allowed_hosts_destroy",
        parameters=[OpenApiParameter("host_id", OpenApiTypes.INT, OpenApiParameter.PATH)],
        responses={204: None, **_REFUSALS},
    )
    def delete(self, request, host_id: int):
        if host_id < 1:
            raise NotFound("No allowed host matches the given query.")
        services.allowed_host_delete(actor=request.principal, host_id=host_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
