"""Dashboard URLs for deployments."""

from django.urls import path

from . import views

app_name = "deployments"

urlpatterns = [
    path("targets/", views.target_list, name="target_list"),
    path("targets/<uuid:target_id>/", views.target_edit, name="target_edit"),
    path("targets/<uuid:target_id>/delete/", views.target_delete, name="target_delete"),
    path("releases/<uuid:release_id>/deploy/", views.release_deploy, name="release_deploy"),
    path("deployments/", views.deployment_list, name="deployment_list"),
    path("deployments/<uuid:deployment_id>/", views.deployment_detail, name="deployment_detail"),
    path("deployments/<uuid:deployment_id>/<slug:action>/", views.deployment_command, name="deployment_command"),
]
