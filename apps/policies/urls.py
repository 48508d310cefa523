"""Dashboard URLs for policies."""

from django.urls import path

from . import views

app_name = "policies"

urlpatterns = [
    path("policies/", views.pack_list, name="pack_list"),
    path("policies/new/", views.pack_new, name="pack_new"),
    path("policies/<slug:name>/", views.pack_detail, name="pack_detail"),
    path("policies/<slug:name>/versions/", views.pack_version_new, name="pack_version_new"),
    path("policies/<slug:name>/bindings/", views.binding_new, name="binding_new"),
    path("policies/<slug:name>/bindings/<int:binding_id>/delete/", views.binding_delete, name="binding_delete"),
]
