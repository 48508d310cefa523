"""Token API: a principal lists, creates and revokes its own tokens."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from apps.accounts import selectors, services
from apps.rbac.roles import Scope

from .serializers import TokenCreatedOutput, TokenCreateInput, TokenOutput


class TokenListCreateApi(GenericAPIView):
    """``GET``: your tokens (paginated). ``POST``: a new token; the response carries it once."""

    serializer_class = TokenOutput

    @extend_schema(responses=TokenOutput(many=True), operation_id="tokens_list")
    def get(self, request):
        page = self.paginate_queryset(selectors.token_list(actor=request.principal))
        return self.get_paginated_response(TokenOutput(page, many=True).data)

    @extend_schema(request=TokenCreateInput, responses={201: TokenCreatedOutput}, operation_id="tokens_create")
    def post(self, request):
        data = TokenCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        actor = request.principal
        scopes = data.validated_data["scopes"] or [Scope.READ.value]
        token, raw = services.token_create(
            actor=actor,
            name=data.validated_data["name"],
            scopes=scopes,
            expires_in_days=data.validated_data["expires_in_days"],
            **selectors.token_owner(actor=actor),
        )
        body = TokenCreatedOutput(token).data
        body["token"] = raw
        response = Response(body, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        return response


class TokenRevokeApi(GenericAPIView):
    """Revoke one of your tokens (an admin may revoke anyone's). Idempotent."""

    serializer_class = TokenOutput

    @extend_schema(request=None, responses=TokenOutput, operation_id="tokens_revoke")
    def post(self, request, token_id: str):
        token = services.token_revoke(actor=request.principal, token_id=token_id)
        return Response(TokenOutput(token).data)
