"""Admin API shapes for people, teams, service accounts and role bindings. Shape only: services decide."""

from __future__ import annotations

from django.contrib.auth.validators import UnicodeUsernameValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from apps.accounts.models import ServiceAccount, Team, User
from apps.core.api import fields as api_fields
from apps.core.api.strict import StrictInput
from apps.rbac.models import RoleBinding, ScopeType, SubjectType
from apps.rbac.roles import Role


@extend_schema_field(
    {
        "type": "string",
        "anyOf": [{"format": "email"}, {"maxLength": 0}],
        "description": "An e-mail address, or empty when none is on record.",
    }
)
class OptionalEmailField(serializers.EmailField):
    """An e-mail address that may be empty: the schema says so, rather than ``format: email`` alone."""

    def __init__(self, **kwargs):
        kwargs.setdefault("allow_blank", True)
        super().__init__(**kwargs)


# ---------------------------------------------------------------------------------------------
# Output


class UserOutput(serializers.ModelSerializer):
    """A person: names, e-mail address, whether they may sign in, and their teams."""

    display_name = serializers.CharField(read_only=True)
    email = OptionalEmailField(read_only=True)
    teams = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = [
            "username",
            "first_name",
            "last_name",
            "display_name",
            "email",
            "is_active",
            "teams",
            "date_joined",
            "last_login",
            "url",
        ]
        read_only_fields = fields

    def get_teams(self, obj) -> list[str]:
        return [team.name for team in obj.teams.all()]  # prefetched by the selector

    def get_url(self, obj) -> str:
        return reverse(
            "api:accounts-user-detail", kwargs={"username": obj.username}, request=self.context.get("request")
        )


class TeamOutput(serializers.ModelSerializer):
    """A team and its members' usernames."""

    members = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = Team
        fields = ["name", "display_name", "description", "members", "created_at", "url"]
        read_only_fields = fields

    def get_members(self, obj) -> list[str]:
        return [user.username for user in obj.members.all()]  # prefetched by the selector

    def get_url(self, obj) -> str:
        return reverse("api:accounts-team-detail", kwargs={"name": obj.name}, request=self.context.get("request"))


class ServiceAccountOutput(serializers.ModelSerializer):
    """A CI service account and the person accountable for it."""

    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    team = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)

    class Meta:
        model = ServiceAccount
        fields = ["name", "description", "owner", "team", "is_active", "created_at"]
        read_only_fields = fields


class RoleBindingOutput(serializers.ModelSerializer):
    """Who (``subject_type`` and ``subject``) holds which role, where (``scope_type``, with the team or model)."""

    subject_type = api_fields.ChoiceField(choices=SubjectType.choices, read_only=True)
    subject = serializers.SerializerMethodField()
    role = api_fields.ChoiceField(choices=Role.choices, read_only=True)
    scope_type = api_fields.ChoiceField(choices=ScopeType.choices, read_only=True)
    scope_team = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)
    scope_model = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)
    scope_environment = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)
    url = serializers.SerializerMethodField()

    class Meta:
        model = RoleBinding
        fields = [
            "id",
            "subject_type",
            "subject",
            "role",
            "scope_type",
            "scope_team",
            "scope_model",
            "scope_environment",
            "granted_by",
            "created_at",
            "url",
        ]
        read_only_fields = fields

    def get_subject(self, obj) -> str:
        if obj.subject_type == SubjectType.USER:
            return obj.user.username
        if obj.subject_type == SubjectType.TEAM:
            return obj.team.name
        return obj.service_account.name

    def get_url(self, obj) -> str:
        return reverse(
            "api:accounts-role-binding-detail", kwargs={"binding_id": obj.pk}, request=self.context.get("request")
        )


# ---------------------------------------------------------------------------------------------
# Input


class UsernameField(serializers.CharField):
    """A username as Django accepts it: letters, digits and @ . + - _, at most 150 characters."""

    def __init__(self, **kwargs):
        super().__init__(max_length=150, validators=[UnicodeUsernameValidator()], **kwargs)


class UserCreateInput(serializers.Serializer):
    username = UsernameField(help_text="Permanent: the person's key in URLs and in the audit trail.")
    email = OptionalEmailField(required=False, default="")
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    password = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        default="",
        max_length=4096,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="Checked against the password rules. Without one the person cannot sign in to the dashboard "
        "until an operator sets it (manage.py changepassword); tokens still work.",
    )


class UserUpdateInput(StrictInput, serializers.Serializer):
    output = UserOutput
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    email = OptionalEmailField(required=False)
    is_active = serializers.BooleanField(
        required=False,
        help_text="false deactivates the person: their tokens are revoked and they can no longer sign in. "
        "Nobody can deactivate themselves.",
    )
    username = serializers.CharField(required=False, help_text="Permanent: sending another value is a 400.")


class TeamCreateInput(serializers.Serializer):
    name = serializers.SlugField(max_length=64, help_text="Permanent: the team's key in URLs.")
    display_name = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")
    description = serializers.CharField(required=False, allow_blank=True, default="")


class TeamMemberInput(serializers.Serializer):
    username = serializers.CharField(max_length=150)


class ServiceAccountCreateInput(serializers.Serializer):
    name = serializers.SlugField(max_length=64)
    owner = serializers.CharField(
        max_length=150, help_text="Username of the active person accountable for what the account does."
    )
    team = serializers.SlugField(max_length=64, required=False, allow_blank=True, allow_null=True, default=None)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class _OptionalName(serializers.CharField):
    def __init__(self, **kwargs):
        super().__init__(required=False, allow_blank=True, allow_null=True, default=None, **kwargs)


class RoleBindingCreateInput(serializers.Serializer):
    subject_type = api_fields.ChoiceField(choices=SubjectType.choices)
    subject = serializers.CharField(max_length=150, help_text="The user's, team's or service account's name.")
    role = api_fields.ChoiceField(choices=Role.choices)
    scope_team = _OptionalName(max_length=64, help_text="Limit the role to this team's models and datasets.")
    scope_model = _OptionalName(max_length=100, help_text="Limit the role to this model. Without any scope: global.")
    scope_environment = _OptionalName(
        max_length=50, help_text="Limit the role to releases into this environment (e.g. staging)."
    )
