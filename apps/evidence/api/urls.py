"""Evidence API under /api/v1/: request runs on versions and datasets, read them."""

from django.urls import path

from .views import (
    DatasetEvidenceApi,
    EvidenceFileDownloadApi,
    EvidenceRunCancelApi,
    EvidenceRunDetailApi,
    FindingReviewApi,
    VersionEvidenceApi,
)

urlpatterns = [
    path(
        "models/<slug:name>/versions/<int:number>/evidence/", VersionEvidenceApi.as_view(), name="evidence-version-list"
    ),
    path("datasets/<int:dataset_id>/evidence/", DatasetEvidenceApi.as_view(), name="evidence-dataset-list"),
    path("evidence/<uuid:run_id>/", EvidenceRunDetailApi.as_view(), name="evidence-run-detail"),
    path("evidence/<uuid:run_id>/cancel/", EvidenceRunCancelApi.as_view(), name="evidence-run-cancel"),
    path("evidence/<uuid:run_id>/reviews/", FindingReviewApi.as_view(), name="evidence-run-reviews"),
    path("evidence/<uuid:run_id>/files/<str:name>/", EvidenceFileDownloadApi.as_view(), name="evidence-file-download"),
]
