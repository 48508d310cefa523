"""Registry API under /api/v1/: models, versions, datasets, and changes of models' policy facts."""

from django.urls import path

from .views import (
    DatasetDetailApi,
    DatasetDownloadApi,
    DatasetListCreateApi,
    DatasetVerifyApi,
    DownloadApi,
    FactsChangeApproveApi,
    FactsChangeCancelApi,
    FactsChangeDetailApi,
    FactsChangeListApi,
    FactsChangeRejectApi,
    ModelDetailApi,
    ModelListCreateApi,
    VersionArtifactDownloadApi,
    VersionDetailApi,
    VersionListCreateApi,
    VersionRetireApi,
    VersionVerifyApi,
)

urlpatterns = [
    path("models/", ModelListCreateApi.as_view(), name="registry-model-list"),
    path("models/<slug:name>/", ModelDetailApi.as_view(), name="registry-model-detail"),
    path("models/<slug:name>/versions/", VersionListCreateApi.as_view(), name="registry-version-list"),
    path("models/<slug:name>/versions/<int:number>/", VersionDetailApi.as_view(), name="registry-version-detail"),
    path(
        "models/<slug:name>/versions/<int:number>/retire/", VersionRetireApi.as_view(), name="registry-version-retire"
    ),
    path(
        "models/<slug:name>/versions/<int:number>/verify/", VersionVerifyApi.as_view(), name="registry-version-verify"
    ),
    path(
        "models/<slug:name>/versions/<int:number>/artifact/download/",
        VersionArtifactDownloadApi.as_view(),
        name="registry-version-artifact-download",
    ),
    path("datasets/", DatasetListCreateApi.as_view(), name="registry-dataset-list"),
    path("datasets/<int:dataset_id>/", DatasetDetailApi.as_view(), name="registry-dataset-detail"),
    path("datasets/<int:dataset_id>/verify/", DatasetVerifyApi.as_view(), name="registry-dataset-verify"),
    path("datasets/<int:dataset_id>/download/", DatasetDownloadApi.as_view(), name="registry-dataset-download"),
    path("downloads/<str:token>/", DownloadApi.as_view(), name="registry-download"),
    path("facts-changes/", FactsChangeListApi.as_view(), name="registry-facts-change-list"),
    path("facts-changes/<uuid:change_id>/", FactsChangeDetailApi.as_view(), name="registry-facts-change-detail"),
    path(
        "facts-changes/<uuid:change_id>/approve/",
        FactsChangeApproveApi.as_view(),
        name="registry-facts-change-approve",
    ),
    path("facts-changes/<uuid:change_id>/reject/", FactsChangeRejectApi.as_view(), name="registry-facts-change-reject"),
    path("facts-changes/<uuid:change_id>/cancel/", FactsChangeCancelApi.as_view(), name="registry-facts-change-cancel"),
]
