"""Policies API under /api/v1/."""

from django.urls import path

from .views import (
    BindingDetailApi,
    BindingListApi,
    DryRunApi,
    PackDetailApi,
    PackListApi,
    PackVersionDetailApi,
    PackVersionListApi,
    VersionDecisionApi,
)

urlpatterns = [
    path("policies/", PackListApi.as_view(), name="policies-list"),
    path("policies/dry-run/", DryRunApi.as_view(), name="policies-dry-run"),
    path("policies/bindings/<int:binding_id>/", BindingDetailApi.as_view(), name="policies-binding-detail"),
    path("policies/<slug:name>/", PackDetailApi.as_view(), name="policies-detail"),
    path("policies/<slug:name>/versions/", PackVersionListApi.as_view(), name="policies-versions"),
    path("policies/<slug:name>/versions/<int:number>/", PackVersionDetailApi.as_view(), name="policies-version"),
    path("policies/<slug:name>/bindings/", BindingListApi.as_view(), name="policies-bindings"),
    path(
        "models/<slug:name>/versions/<int:number>/policy-decision/",
        VersionDecisionApi.as_view(),
        name="policies-version-decision",
    ),
]
