"""Dashboard URLs: sign-in, sign-out, personal API tokens, and the Access page (people, teams, roles)."""

from django.urls import path

from . import access_views, views

app_name = "accounts"

urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("tokens/", views.tokens_view, name="tokens"),
    path("tokens/<str:token_id>/revoke/", views.token_revoke_view, name="token_revoke"),
    path("access/", access_views.access, name="access"),
    path("access/users/", access_views.user_create, name="access_user_create"),
    path("access/users/<str:username>/active/", access_views.user_set_active, name="access_user_active"),
    path("access/teams/", access_views.team_create, name="access_team_create"),
    path("access/members/", access_views.member_add, name="access_member_add"),
    path(
        "access/teams/<slug:name>/members/<str:username>/remove/",
        access_views.member_remove,
        name="access_member_remove",
    ),
    path("access/service-accounts/", access_views.service_account_create, name="access_service_account_create"),
    path("access/role-bindings/", access_views.role_grant, name="access_role_grant"),
    path("access/role-bindings/<int:binding_id>/revoke/", access_views.role_revoke, name="access_role_revoke"),
]
