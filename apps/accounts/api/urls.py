"""Token API under /api/v1/."""

from django.urls import path

from .views import TokenListCreateApi, TokenRevokeApi

urlpatterns = [
    path("tokens/", TokenListCreateApi.as_view(), name="token-list"),
    path("tokens/<str:token_id>/revoke/", TokenRevokeApi.as_view(), name="token-revoke"),
]
