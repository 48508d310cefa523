"""Dashboard URLs for evidence."""

from django.urls import path

from . import views

app_name = "evidence"

urlpatterns = [
    path("evidence/<uuid:run_id>/", views.run_detail, name="run_detail"),
    path("evidence/<uuid:run_id>/cancel/", views.run_cancel, name="run_cancel"),
    path("evidence/<uuid:run_id>/reviews/", views.finding_review, name="finding_review"),
    path("evidence/<uuid:run_id>/files/<str:name>", views.file_download, name="file_download"),
    path(
        "models/<slug:name>/versions/<int:number>/evidence/<slug:kind>/",
        views.version_evidence_request,
        name="version_evidence_request",
    ),
    path(
        "datasets/<int:dataset_id>/evidence/<slug:kind>/",
        views.dataset_evidence_request,
        name="dataset_evidence_request",
    ),
]
