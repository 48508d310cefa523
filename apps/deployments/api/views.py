"""Deployments API: targets (admins), starting a deployment from a release, and the rollout's commands."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from apps.core.api.params import query_choice
from apps.deployments import selectors, services
from apps.deployments.choices import DeploymentState
from apps.releases.environments import environment_names

from .serializers import (
    DeployInput,
    DeploymentDetailOutput,
    DeploymentOutput,
    ReasonInput,
    TargetInput,
    TargetOutput,
    TargetUpdateInput,
    deployment_url,
    target_url,
)

PROBLEM = OpenApiResponse(description="Problem details (application/problem+json).")
_REFUSALS = {400: PROBLEM, 401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 409: PROBLEM}
_TARGET_ID = OpenApiParameter("target_id", OpenApiTypes.UUID, OpenApiParameter.PATH)
_DEPLOYMENT_ID = OpenApiParameter("deployment_id", OpenApiTypes.UUID, OpenApiParameter.PATH)
_RELEASE_ID = OpenApiParameter("release_id", OpenApiTypes.UUID, OpenApiParameter.PATH)


def _target(request, target, code=status.HTTP_200_OK) -> Response:
    headers = {"Location": target_url(target, request)} if code == status.HTTP_201_CREATED else None
    return Response(TargetOutput(target, context={"request": request}).data, status=code, headers=headers)


def _accepted(request, deployment_id) -> Response:
    """202: the work is the workers'; the body is the deployment as it is now, ``Location`` its URL."""
    deployment = selectors.deployment_get(actor=request.principal, deployment_id=deployment_id)
    body = DeploymentDetailOutput(deployment, context={"request": request}).data
    return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": deployment_url(deployment, request)})


class TargetListApi(GenericAPIView):
    """``GET``: every deployment target. ``POST``: add one (global admins); credentials are never shown back."""

    serializer_class = TargetOutput

    @extend_schema(operation_id="targets_list", responses={200: TargetOutput(many=True), 401: PROBLEM, 403: PROBLEM})
    def get(self, request):
        page = self.paginate_queryset(selectors.target_list(actor=request.principal))
        return self.get_paginated_response(TargetOutput(page, many=True, context={"request": request}).data)

    @extend_schema(operation_id="targets_create", request=TargetInput, responses={201: TargetOutput, **_REFUSALS})
    def post(self, request):
        data = TargetInput(data=request.data)
        data.is_valid(raise_exception=True)
        target = services.target_create(actor=request.principal, **data.validated_data)
        return _target(request, target, status.HTTP_201_CREATED)


class TargetDetailApi(GenericAPIView):
    """``GET`` one target, ``PATCH`` its settings, credentials (replaced only when given), environment, enabled
    flag or description, ``DELETE`` it (refused while a deployment on it is active)."""

    serializer_class = TargetOutput

    @extend_schema(
        operation_id="targets_retrieve",
        parameters=[_TARGET_ID],
        responses={200: TargetOutput, 401: PROBLEM, 404: PROBLEM},
    )
    def get(self, request, target_id):
        return _target(request, selectors.target_get(actor=request.principal, target_id=target_id))

    @extend_schema(
        operation_id="targets_update",
        parameters=[_TARGET_ID],
        request=TargetUpdateInput,
        responses={200: TargetOutput, **_REFUSALS},
    )
    def patch(self, request, target_id):
        data = TargetUpdateInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        target = services.target_update(actor=request.principal, target_id=target_id, **data.validated_data)
        return _target(request, target)

    @extend_schema(operation_id="targets_destroy", parameters=[_TARGET_ID], responses={204: None, **_REFUSALS})
    def delete(self, request, target_id):
        services.target_delete(actor=request.principal, target_id=target_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ReleaseDeployApi(GenericAPIView):
    """Deploy an approved release's version to one of its environment's targets: 202 and the deployment's URL."""

    serializer_class = DeploymentDetailOutput

    @extend_schema(
        operation_id="releases_deploy",
        parameters=[_RELEASE_ID],
        request=DeployInput,
        responses={202: DeploymentDetailOutput, **_REFUSALS},
    )
    def post(self, request, release_id):
        data = DeployInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        deployment = services.deployment_start(
            actor=request.principal,
            release_id=release_id,
            target=values["target"],
            strategy=values["strategy"],
            steps=[dict(s) for s in values["steps"]] if values["steps"] is not None else None,
            thresholds=dict(values["thresholds"]) if values["thresholds"] is not None else None,
            kind=values["kind"],
            schedule=values["schedule"],
            reason=values["reason"],
        )
        return _accepted(request, deployment.public_id)


def _list(view: GenericAPIView, request, deployments) -> Response:
    page = view.paginate_queryset(deployments)
    params = request.query_params
    if not page:  # only an empty page can come from a misspelt name: a 400 naming the known ones
        if "environment" in params:
            query_choice(request, "environment", environment_names())
        if "target" in params:
            query_choice(request, "target", selectors.target_names())
    return view.get_paginated_response(DeploymentOutput(page, many=True, context={"request": request}).data)


_FILTERS = [
    OpenApiParameter("model", str, description="A model's name"),
    OpenApiParameter("target", str, description="A target's name (400 listing them otherwise)"),
    OpenApiParameter("state", str, enum=DeploymentState.values),
    OpenApiParameter("environment", str, description="An environment's name (400 listing them otherwise)"),
]


class DeploymentListApi(GenericAPIView):
    """Deployments you may see, newest first."""

    serializer_class = DeploymentOutput

    @extend_schema(
        operation_id="deployments_list",
        parameters=_FILTERS,
        responses={200: DeploymentOutput(many=True), 400: PROBLEM, 401: PROBLEM},
    )
    def get(self, request):
        params = request.query_params
        deployments = selectors.deployment_list(
            actor=request.principal,
            model=params.get("model", ""),
            target=params.get("target", ""),
            state=query_choice(request, "state", DeploymentState.values),
            environment=params.get("environment", ""),
        )
        return _list(self, request, deployments)


class ModelDeploymentsApi(GenericAPIView):
    """A model's deployments on every target, newest first."""

    serializer_class = DeploymentOutput

    @extend_schema(
        operation_id="models_deployments_list",
        responses={200: DeploymentOutput(many=True), 401: PROBLEM, 404: PROBLEM},
    )
    def get(self, request, name: str):
        return _list(self, request, selectors.model_deployments(actor=request.principal, name=name))


class DeploymentDetailApi(GenericAPIView):
    """One deployment, with its step timeline and the traffic last applied."""

    serializer_class = DeploymentDetailOutput

    @extend_schema(
        operation_id="deployments_retrieve",
        parameters=[_DEPLOYMENT_ID],
        responses={200: DeploymentDetailOutput, 401: PROBLEM, 404: PROBLEM},
    )
    def get(self, request, deployment_id):
        deployment = selectors.deployment_get(actor=request.principal, deployment_id=deployment_id)
        return Response(DeploymentDetailOutput(deployment, context={"request": request}).data)


def _command(operation_id: str, doc: str, service, request_serializer=ReasonInput):
    class CommandApi(GenericAPIView):
        serializer_class = DeploymentDetailOutput

        @extend_schema(
            operation_id=operation_id,
            parameters=[_DEPLOYMENT_ID],
            request=request_serializer,
            responses={202: DeploymentDetailOutput, **_REFUSALS},
        )
        def post(self, request, deployment_id):
            data = request_serializer(data=request.data)
            data.is_valid(raise_exception=True)
            service(actor=request.principal, deployment_id=deployment_id, reason=data.validated_data["reason"])
            return _accepted(request, deployment_id)

    CommandApi.__doc__ = doc
    CommandApi.__name__ = CommandApi.__qualname__ = "".join(p.title() for p in operation_id.split("_")) + "Api"
    return CommandApi


DeploymentHaltApi = _command(
    "deployments_halt",
    "Halt a rollout, with a reason: live traffic back to the stable version within seconds (202).",
    services.deployment_halt,
)
DeploymentResumeApi = _command(
    "deployments_resume", "Resume a paused or halted rollout, with a reason (202).", services.deployment_resume
)
DeploymentRollbackApi = _command(
    "deployments_rollback",
    "Roll back, with a reason: all traffic to the stable version, the new one removed (202).",
    services.deployment_rollback,
)
DeploymentUndeployApi = _command(
    "deployments_undeploy",
    "Remove a serving deployment from its target, with a reason (202).",
    services.deployment_undeploy,
)
