"""Dashboard URLs: sign-in, sign-out, personal API tokens."""

from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("tokens/", views.tokens_view, name="tokens"),
    path("tokens/<str:token_id>/revoke/", views.token_revoke_view, name="token_revoke"),
]
