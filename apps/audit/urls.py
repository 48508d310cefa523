"""Dashboard URLs for the audit trail."""

from django.urls import path

from . import views

app_name = "audit"

urlpatterns = [
    path("audit/", views.event_list, name="event_list"),
    path("audit/export.<str:fmt>", views.event_export, name="export"),
    path("audit/verify/", views.chain_verify, name="verify"),
]
