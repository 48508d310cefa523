"""Policies API: packs, versions, bindings, decisions and dry-runs; thin views over services and selectors."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from apps.accounts.models import Team
from apps.accounts.selectors import unknown_team
from apps.core.errors import NotFound, ValidationFailed
from apps.policies import selectors, services
from apps.policies.disclosure import decision_for_reader
from apps.registry.models import RegisteredModel

from .serializers import (
    BindingCreateInput,
    DecisionOutput,
    DryRunInput,
    PackCreateInput,
    PackOutput,
    VersionCreateInput,
    binding_data,
    pack_data,
    version_data,
)

PROBLEM = OpenApiResponse(description="Problem details (application/problem+json).")
_REFUSALS = {400: PROBLEM, 401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 409: PROBLEM}


def _detail(request, pack) -> dict:
    versions = list(selectors.policy_pack_versions(pack=pack))
    return pack_data(
        pack,
        request,
        latest=versions[0] if versions else None,
        versions=versions,
        bindings=selectors.policy_binding_list(actor=request.principal, pack=pack),
    )


class PackListApi(GenericAPIView):
    """``GET``: every policy pack. ``POST``: upload a custom pack (compiled and checked; ``policies.manage``)."""

    serializer_class = PackOutput

    @extend_schema(operation_id="policies_list", responses={200: PackOutput(many=True), 401: PROBLEM, 403: PROBLEM})
    def get(self, request):
        packs = selectors.policy_pack_list(actor=request.principal)
        page = self.paginate_queryset(packs)
        return self.get_paginated_response([pack_data(p, request) for p in page])

    @extend_schema(operation_id="policies_create", request=PackCreateInput, responses={201: PackOutput, **_REFUSALS})
    def post(self, request):
        data = PackCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.policy_pack_create(actor=request.principal, **data.validated_data)
        body = _detail(request, version.pack)
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": body["url"]})


class PackDetailApi(GenericAPIView):
    """One pack: its latest source, version history and bindings."""

    serializer_class = PackOutput

    @extend_schema(
        operation_id="policies_retrieve", responses={200: PackOutput, 401: PROBLEM, 403: PROBLEM, 404: PROBLEM}
    )
    def get(self, request, name: str):
        return Response(_detail(request, selectors.policy_pack_get(actor=request.principal, name=name)))


class PackVersionListApi(GenericAPIView):
    """``GET``: a pack's versions, newest first, with their sources. ``POST``: a new version (never an edit)."""

    serializer_class = VersionCreateInput

    @extend_schema(
        operation_id="policies_versions_list", responses={200: OpenApiTypes.OBJECT, 401: PROBLEM, 404: PROBLEM}
    )
    def get(self, request, name: str):
        pack = selectors.policy_pack_get(actor=request.principal, name=name)
        page = self.paginate_queryset(selectors.policy_pack_versions(pack=pack))
        return self.get_paginated_response([version_data(v) for v in page])

    @extend_schema(
        operation_id="policies_versions_create",
        request=VersionCreateInput,
        responses={201: OpenApiTypes.OBJECT, **_REFUSALS},
    )
    def post(self, request, name: str):
        data = VersionCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.policy_pack_version_create(actor=request.principal, name=name, **data.validated_data)
        return Response(version_data(version), status=status.HTTP_201_CREATED)


class PackVersionDetailApi(GenericAPIView):
    """One version of a pack, with its source."""

    serializer_class = VersionCreateInput

    @extend_schema(
        operation_id="policies_versions_retrieve", responses={200: OpenApiTypes.OBJECT, 401: PROBLEM, 404: PROBLEM}
    )
    def get(self, request, name: str, number: int):
        version = selectors.policy_pack_version_get(actor=request.principal, name=name, number=number)
        return Response(version_data(version))


class BindingListApi(GenericAPIView):
    """``GET``: a pack's bindings. ``POST``: bind it to every model, a team or a model, optionally one environment."""

    serializer_class = BindingCreateInput

    @extend_schema(
        operation_id="policies_bindings_list", responses={200: OpenApiTypes.OBJECT, 401: PROBLEM, 404: PROBLEM}
    )
    def get(self, request, name: str):
        pack = selectors.policy_pack_get(actor=request.principal, name=name)
        page = self.paginate_queryset(selectors.policy_binding_list(actor=request.principal, pack=pack))
        return self.get_paginated_response([binding_data(b) for b in page])

    @extend_schema(
        operation_id="policies_bindings_create",
        request=BindingCreateInput,
        responses={201: OpenApiTypes.OBJECT, **_REFUSALS},
    )
    def post(self, request, name: str):
        data = BindingCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        team = model = None
        if values["team"]:
            team = Team.objects.filter(name=values["team"]).first()
            if team is None:
                raise unknown_team(actor=request.principal, name=values["team"])
        if values["model"]:
            model = RegisteredModel.objects.filter(name=values["model"]).first()
            if model is None:
                raise ValidationFailed(f"No model named {values['model']!r}.", errors={"model": ["Unknown model."]})
        binding = services.policy_binding_create(
            actor=request.principal, pack_name=name, team=team, model=model, environment=values["environment"]
        )
        return Response(binding_data(binding), status=status.HTTP_201_CREATED)


class BindingDetailApi(GenericAPIView):
    """``DELETE``: remove a binding."""

    serializer_class = BindingCreateInput

    @extend_schema(operation_id="policies_bindings_destroy", responses={204: None, **_REFUSALS})
    def delete(self, request, binding_id: int):
        services.policy_binding_delete(actor=request.principal, binding_id=binding_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DryRunApi(GenericAPIView):
    """Evaluate the packs in force (or one pack version, as if bound) on a version and environment. Writes nothing."""

    serializer_class = DryRunInput

    @extend_schema(operation_id="policies_dry_run", request=DryRunInput, responses={200: DecisionOutput, **_REFUSALS})
    def post(self, request):
        data = DryRunInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        pin = None
        if values["pack"]:
            pack = selectors.policy_pack_get(actor=request.principal, name=values["pack"])
            number = (
                values["pack_version"] or pack.versions.order_by("-number").values_list("number", flat=True).first()
            )
            if number is None:
                raise NotFound(f"Policy pack {pack.name!r} has no version.")
            pin = selectors.policy_pack_version_get(actor=request.principal, name=pack.name, number=number)
        decision = selectors.policy_decision_get(
            actor=request.principal,
            model_name=values["model"],
            number=values["version"],
            environment=selectors.environment_for(values["environment"], values["production"]),
            release=values["release"],
            pin=pin,
        )
        return Response(decision_for_reader(actor=request.principal, decision=decision.as_dict()))


class VersionDecisionApi(GenericAPIView):
    """The policy decision for a version in an environment (``?environment=production``), without a release."""

    serializer_class = DecisionOutput

    @extend_schema(
        operation_id="models_versions_policy_decision",
        parameters=[OpenApiParameter("environment", str, required=True)],
        responses={200: DecisionOutput, **_REFUSALS},
    )
    def get(self, request, name: str, number: int):
        environment = selectors.environment_for(request.query_params.get("environment", ""))
        decision = selectors.policy_decision_get(
            actor=request.principal, model_name=name, number=number, environment=environment
        )
        return Response(decision_for_reader(actor=request.principal, decision=decision.as_dict()))
