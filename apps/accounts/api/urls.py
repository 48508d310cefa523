"""Accounts API under /api/v1/: your tokens; for admins (and, to read, auditors) people, teams,
service accounts and role bindings."""

from django.urls import path

from . import admin_views
from .views import TokenListCreateApi, TokenRevokeApi

urlpatterns = [
    path("tokens/", TokenListCreateApi.as_view(), name="token-list"),
    path("tokens/<str:token_id>/revoke/", TokenRevokeApi.as_view(), name="token-revoke"),
    path("users/", admin_views.UserListCreateApi.as_view(), name="accounts-user-list"),
    path("users/<str:username>/", admin_views.UserDetailApi.as_view(), name="accounts-user-detail"),
    path("teams/", admin_views.TeamListCreateApi.as_view(), name="accounts-team-list"),
    path("teams/<slug:name>/", admin_views.TeamDetailApi.as_view(), name="accounts-team-detail"),
    path("teams/<slug:name>/members/", admin_views.TeamMemberAddApi.as_view(), name="accounts-team-members"),
    path(
        "teams/<slug:name>/members/<str:username>/",
        admin_views.TeamMemberRemoveApi.as_view(),
        name="accounts-team-member",
    ),
    path("service-accounts/", admin_views.ServiceAccountListCreateApi.as_view(), name="accounts-service-account-list"),
    path("role-bindings/", admin_views.RoleBindingListCreateApi.as_view(), name="accounts-role-binding-list"),
    path(
        "role-bindings/<int:binding_id>/",
        admin_views.RoleBindingDetailApi.as_view(),
        name="accounts-role-binding-detail",
    ),
]
