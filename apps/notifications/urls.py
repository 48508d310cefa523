"""Dashboard URLs for notifications."""

from django.urls import path

from . import views

app_name = "notifications"

urlpatterns = [
    path("webhooks/", views.webhook_list, name="webhook_list"),
    path("webhooks/teams/<slug:team>/new/", views.webhook_create, name="webhook_create"),
    path(
        "webhooks/<uuid:webhook_id>/<slug:action>/",
        views.webhook_action,
        name="webhook_action",
    ),
]
