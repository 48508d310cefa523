"""Deployments API under /api/v1/: targets, deploying a release, deployments and their commands."""

from django.urls import path

from .views import (
    DeploymentDetailApi,
    DeploymentHaltApi,
    DeploymentListApi,
    DeploymentResumeApi,
    DeploymentRollbackApi,
    DeploymentUndeployApi,
    ModelDeploymentsApi,
    ReleaseDeployApi,
    TargetDetailApi,
    TargetListApi,
)

urlpatterns = [
    path("targets/", TargetListApi.as_view(), name="target-list"),
    path("targets/<uuid:target_id>/", TargetDetailApi.as_view(), name="target-detail"),
    path("releases/<uuid:release_id>/deploy/", ReleaseDeployApi.as_view(), name="release-deploy"),
    path("deployments/", DeploymentListApi.as_view(), name="deployment-list"),
    path("deployments/<uuid:deployment_id>/", DeploymentDetailApi.as_view(), name="deployment-detail"),
    path("deployments/<uuid:deployment_id>/halt/", DeploymentHaltApi.as_view(), name="deployment-halt"),
    path("deployments/<uuid:deployment_id>/resume/", DeploymentResumeApi.as_view(), name="deployment-resume"),
    path("deployments/<uuid:deployment_id>/rollback/", DeploymentRollbackApi.as_view(), name="deployment-rollback"),
    path("deployments/<uuid:deployment_id>/undeploy/", DeploymentUndeployApi.as_view(), name="deployment-undeploy"),
    path("models/<slug:name>/deployments/", ModelDeploymentsApi.as_view(), name="model-deployments"),
]
