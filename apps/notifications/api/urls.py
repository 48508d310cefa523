"""Notifications API under /api/v1/: a team's webhooks, their deliveries, and the hosts admins allow."""

from django.urls import path

from . import views

urlpatterns = [
    path("teams/<slug:name>/webhooks/", views.TeamWebhooksApi.as_view(), name="team-webhooks"),
    path("webhooks/<uuid:webhook_id>/", views.WebhookDetailApi.as_view(), name="webhook-detail"),
    path("webhooks/<uuid:webhook_id>/rotate-secret/", views.WebhookRotateSecretApi.as_view(), name="webhook-rotate"),
    path("webhooks/<uuid:webhook_id>/test/", views.WebhookTestApi.as_view(), name="webhook-test"),
    path("webhooks/<uuid:webhook_id>/deliveries/", views.WebhookDeliveriesApi.as_view(), name="webhook-deliveries"),
    path(
        "webhooks/<uuid:webhook_id>/deliveries/<uuid:delivery_id>/redeliver/",
        views.WebhookRedeliverApi.as_view(),
        name="webhook-redeliver",
    ),
    path("webhook-allowed-hosts/", views.AllowedHostsApi.as_view(), name="webhook-allowed-hosts"),
    path("webhook-allowed-hosts/<int:host_id>/", views.AllowedHostDetailApi.as_view(), name="webhook-allowed-host"),
]
