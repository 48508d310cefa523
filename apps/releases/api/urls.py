"""Releases API under /api/v1/: environments, release requests, approvals, and the gate."""

from django.urls import path

from .views import (
    EnvironmentListApi,
    GateApi,
    ReleaseApprovalApi,
    ReleaseCancelApi,
    ReleaseDetailApi,
    ReleaseListApi,
    ReleaseReviewCloseApi,
)

urlpatterns = [
    path("environments/", EnvironmentListApi.as_view(), name="environment-list"),
    path("releases/", ReleaseListApi.as_view(), name="release-list"),
    path("releases/<uuid:release_id>/", ReleaseDetailApi.as_view(), name="release-detail"),
    path("releases/<uuid:release_id>/approvals/", ReleaseApprovalApi.as_view(), name="release-approvals"),
    path("releases/<uuid:release_id>/cancel/", ReleaseCancelApi.as_view(), name="release-cancel"),
    path("releases/<uuid:release_id>/review/", ReleaseReviewCloseApi.as_view(), name="release-review-close"),
    path("models/<slug:name>/versions/<int:number>/gate/", GateApi.as_view(), name="version-gate"),
]
