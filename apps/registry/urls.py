"""Dashboard URLs for the registry. A model's name is its key."""

from django.urls import path

from . import views

app_name = "registry"

urlpatterns = [
    path("", views.model_list, name="model_list"),
    path("models/<slug:name>/", views.model_detail, name="model_detail"),
    path("models/<slug:name>/versions/<int:number>/", views.version_detail, name="version_detail"),
    path("datasets/", views.dataset_list, name="dataset_list"),
    path("models/<slug:name>/versions/<int:number>/verify/", views.version_verify, name="version_verify"),
    path("datasets/<int:dataset_id>/", views.dataset_detail, name="dataset_detail"),
    path("datasets/<int:dataset_id>/verify/", views.dataset_verify, name="dataset_verify"),
    path("models/<slug:name>/versions/<int:number>/download/", views.version_download, name="version_download"),
    path("datasets/<int:dataset_id>/download/", views.dataset_download, name="dataset_download"),
    path(
        "models/<slug:name>/facts-changes/<uuid:change_id>/<str:command>/",
        views.facts_change_decide,
        name="facts_change_decide",
    ),
]
