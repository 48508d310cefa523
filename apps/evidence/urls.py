"""Dashboard URLs for evidence."""

from django.urls import path

from . import views

app_name = "evidence"

urlpatterns = [
    path("evidence/<uuid:run_id>/", views.run_detail, name="run_detail"),
    path(
        "models/<slug:name>/versions/<int:number>/evidence/bias/",
        views.version_bias_request,
        name="version_bias_request",
    ),
]
