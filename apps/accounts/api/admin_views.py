"""Admin API: people, teams and their members, service accounts, role bindings. Thin: parse, call, render.

Reading needs the global ``accounts.view`` permission (admins and auditors); every write
needs ``accounts.manage`` (admins), checked inside the service, which also writes the
audit event. Anyone else gets 403, and the attempt is audited.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from apps.accounts import selectors, services
from apps.core.api.params import query_choice
from apps.core.errors import ValidationFailed
from apps.rbac import services as rbac
from apps.rbac.roles import Role

from .admin_serializers import (
    RoleBindingCreateInput,
    RoleBindingOutput,
    ServiceAccountCreateInput,
    ServiceAccountOutput,
    TeamCreateInput,
    TeamMemberInput,
    TeamOutput,
    UserCreateInput,
    UserOutput,
    UserUpdateInput,
)

PROBLEM = OpenApiResponse(description="Problem details (application/problem+json).")
_READ_REFUSALS = {401: PROBLEM, 403: PROBLEM}
_REFUSALS = {400: PROBLEM, 401: PROBLEM, 403: PROBLEM, 404: PROBLEM}
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


def _created(body: dict) -> Response:
    return Response(body, status=status.HTTP_201_CREATED, headers={"Location": body["url"]})


def _flag(params, name: str) -> bool | None:
    """An optional true/false query parameter; anything else is a 400 naming it."""
    value = params.get(name, "").strip().lower()
    if not value:
        return None
    if value not in _TRUE | _FALSE:
        raise ValidationFailed(f"{name}: expected true or false.", errors={name: ["Expected true or false."]})
    return value in _TRUE


def _context(request) -> dict:
    return {"request": request}


class UserListCreateApi(GenericAPIView):
    """``GET``: people, by username (admins and auditors). ``POST``: create a person (admins)."""

    serializer_class = UserOutput

    @extend_schema(
        operation_id="users_list",
        parameters=[
            OpenApiParameter("search", str, description="Substring of the username, name or e-mail address."),
            OpenApiParameter("team", str, description="Only members of this team."),
            OpenApiParameter("is_active", OpenApiTypes.BOOL, description="Only active (true) or deactivated (false)."),
        ],
        responses={200: UserOutput(many=True), 400: PROBLEM, **_READ_REFUSALS},
    )
    def get(self, request):
        params = request.query_params
        users = selectors.user_list(
            actor=request.principal,
            search=params.get("search", "").strip(),
            team=params.get("team", "").strip(),
            is_active=_flag(params, "is_active"),
        )
        page = self.paginate_queryset(users)
        return self.get_paginated_response(UserOutput(page, many=True, context=_context(request)).data)

    @extend_schema(
        operation_id="users_create", request=UserCreateInput, responses={201: UserOutput, 409: PROBLEM, **_REFUSALS}
    )
    def post(self, request):
        data = UserCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        user = services.user_create(
            actor=request.principal,
            username=values["username"],
            password=values["password"] or None,
            email=values["email"],
            first_name=values["first_name"],
            last_name=values["last_name"],
        )
        user = selectors.user_get(actor=request.principal, username=user.username)
        return _created(UserOutput(user, context=_context(request)).data)


class UserDetailApi(GenericAPIView):
    """``GET``: one person. ``PATCH``: change names or e-mail address, or deactivate (``is_active: false``)."""

    serializer_class = UserOutput

    @extend_schema(operation_id="users_retrieve", responses={200: UserOutput, 404: PROBLEM, **_READ_REFUSALS})
    def get(self, request, username: str):
        user = selectors.user_get(actor=request.principal, username=username)
        return Response(UserOutput(user, context=_context(request)).data)

    @extend_schema(operation_id="users_update", request=UserUpdateInput, responses={200: UserOutput, **_REFUSALS})
    def patch(self, request, username: str):
        data = UserUpdateInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        services.user_update(actor=request.principal, user=username, changes=data.validated_data)
        user = selectors.user_get(actor=request.principal, username=username)
        return Response(UserOutput(user, context=_context(request)).data)


class TeamListCreateApi(GenericAPIView):
    """``GET``: teams with their members (admins and auditors). ``POST``: create a team (admins)."""

    serializer_class = TeamOutput

    @extend_schema(
        operation_id="teams_list",
        parameters=[OpenApiParameter("search", str, description="Substring of the name or display name.")],
        responses={200: TeamOutput(many=True), **_READ_REFUSALS},
    )
    def get(self, request):
        teams = selectors.team_list(actor=request.principal, search=request.query_params.get("search", "").strip())
        page = self.paginate_queryset(teams)
        return self.get_paginated_response(TeamOutput(page, many=True, context=_context(request)).data)

    @extend_schema(
        operation_id="teams_create", request=TeamCreateInput, responses={201: TeamOutput, 409: PROBLEM, **_REFUSALS}
    )
    def post(self, request):
        data = TeamCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        team = services.team_create(actor=request.principal, **data.validated_data)
        team = selectors.team_get(actor=request.principal, name=team.name)
        return _created(TeamOutput(team, context=_context(request)).data)


class TeamDetailApi(GenericAPIView):
    """One team and its members."""

    serializer_class = TeamOutput

    @extend_schema(operation_id="teams_retrieve", responses={200: TeamOutput, 404: PROBLEM, **_READ_REFUSALS})
    def get(self, request, name: str):
        team = selectors.team_get(actor=request.principal, name=name)
        return Response(TeamOutput(team, context=_context(request)).data)


class TeamMemberAddApi(GenericAPIView):
    """Add a person to a team: they hold the team's roles from now on. Already a member: 409."""

    serializer_class = TeamOutput

    @extend_schema(
        operation_id="teams_members_add",
        request=TeamMemberInput,
        responses={201: TeamOutput, 409: PROBLEM, **_REFUSALS},
    )
    def post(self, request, name: str):
        data = TeamMemberInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.team_member_add(
            actor=request.principal, team=name, user=data.validated_data["username"], exists_ok=False
        )
        team = selectors.team_get(actor=request.principal, name=name)
        return _created(TeamOutput(team, context=_context(request)).data)


class TeamMemberRemoveApi(GenericAPIView):
    """Remove a person from a team: they lose the team's roles at once."""

    serializer_class = TeamOutput

    @extend_schema(operation_id="teams_members_remove", request=None, responses={204: None, **_REFUSALS})
    def delete(self, request, name: str, username: str):
        services.team_member_remove(actor=request.principal, team=name, user=username)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ServiceAccountListCreateApi(GenericAPIView):
    """``GET``: service accounts with their owners (admins and auditors). ``POST``: create one (admins)."""

    serializer_class = ServiceAccountOutput

    @extend_schema(
        operation_id="service_accounts_list",
        parameters=[
            OpenApiParameter("owner", str, description="Only accounts owned by this username."),
            OpenApiParameter("team", str, description="Only accounts of this team."),
        ],
        responses={200: ServiceAccountOutput(many=True), **_READ_REFUSALS},
    )
    def get(self, request):
        params = request.query_params
        accounts = selectors.service_account_list(
            actor=request.principal, owner=params.get("owner", "").strip(), team=params.get("team", "").strip()
        )
        page = self.paginate_queryset(accounts)
        return self.get_paginated_response(ServiceAccountOutput(page, many=True).data)

    @extend_schema(
        operation_id="service_accounts_create",
        request=ServiceAccountCreateInput,
        responses={201: ServiceAccountOutput, 409: PROBLEM, **_REFUSALS},
    )
    def post(self, request):
        data = ServiceAccountCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        account = services.service_account_create(
            actor=request.principal,
            name=values["name"],
            owner=values["owner"],
            team=values["team"] or None,
            description=values["description"],
        )
        return Response(ServiceAccountOutput(account).data, status=status.HTTP_201_CREATED)


class RoleBindingListCreateApi(GenericAPIView):
    """``GET``: role bindings (admins and auditors). ``POST``: grant a role (admins); the same binding twice is 409."""

    serializer_class = RoleBindingOutput

    @extend_schema(
        operation_id="role_bindings_list",
        parameters=[
            OpenApiParameter("user", str, description="Bindings of this user (not those of their teams)."),
            OpenApiParameter("team", str, description="Bindings of this team (its members hold them)."),
            OpenApiParameter("service_account", str, description="Bindings of this service account."),
            OpenApiParameter("role", str, enum=Role.values),
        ],
        responses={200: RoleBindingOutput(many=True), 400: PROBLEM, **_READ_REFUSALS},
    )
    def get(self, request):
        params = request.query_params
        bindings = selectors.role_binding_list(
            actor=request.principal,
            user=params.get("user", "").strip(),
            team=params.get("team", "").strip(),
            service_account=params.get("service_account", "").strip(),
            role=query_choice(request, "role", Role.values),
        )
        page = self.paginate_queryset(bindings)
        return self.get_paginated_response(RoleBindingOutput(page, many=True, context=_context(request)).data)

    @extend_schema(
        operation_id="role_bindings_create",
        request=RoleBindingCreateInput,
        responses={201: RoleBindingOutput, 409: PROBLEM, **_REFUSALS},
    )
    def post(self, request):
        data = RoleBindingCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        binding = services.role_binding_create(
            actor=request.principal,
            subject_type=values["subject_type"],
            subject=values["subject"],
            role=values["role"],
            scope_team=values["scope_team"] or None,
            scope_model=values["scope_model"] or None,
            scope_environment=values["scope_environment"] or None,
        )
        binding = selectors.role_binding_get(actor=request.principal, binding_id=binding.pk)
        return _created(RoleBindingOutput(binding, context=_context(request)).data)


class RoleBindingDetailApi(GenericAPIView):
    """``GET``: one role binding. ``DELETE``: revoke it (admins); the role stops applying at once."""

    serializer_class = RoleBindingOutput

    @extend_schema(
        operation_id="role_bindings_retrieve", responses={200: RoleBindingOutput, 404: PROBLEM, **_READ_REFUSALS}
    )
    def get(self, request, binding_id: int):
        binding = selectors.role_binding_get(actor=request.principal, binding_id=binding_id)
        return Response(RoleBindingOutput(binding, context=_context(request)).data)

    @extend_schema(operation_id="role_bindings_destroy", responses={204: None, **_REFUSALS})
    def delete(self, request, binding_id: int):
        rbac.role_revoke(actor=request.principal, binding_id=binding_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
