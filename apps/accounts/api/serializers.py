"""Token API shapes: what a token looks like, and what creating one takes."""

from __future__ import annotations

from rest_framework import serializers

from apps.accounts.models import ApiToken
from apps.core.api import fields as api_fields
from apps.rbac.roles import Scope


class TokenOutput(serializers.ModelSerializer):
    """A token as listed: never its secret."""

    prefix = serializers.CharField(read_only=True, help_text="The token's recognisable start, assay_<token_id>.")
    status = api_fields.ChoiceField(choices=["active", "expired", "revoked"], read_only=True)
    scopes = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = ApiToken
        fields = [
            "token_id",
            "prefix",
            "name",
            "scopes",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
            "status",
        ]
        read_only_fields = fields


class TokenCreatedOutput(TokenOutput):
    """A new token, with the token string: shown in this response only."""

    token = serializers.CharField(
        read_only=True, help_text="The bearer token. It is not stored and cannot be shown again."
    )

    class Meta(TokenOutput.Meta):
        fields = [*TokenOutput.Meta.fields, "token"]
        read_only_fields = fields


class TokenCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=128)
    scopes = serializers.ListField(
        child=api_fields.ChoiceField(choices=Scope.choices),
        required=False,
        default=list,
        help_text="Defaults to read only. A token used to create another token can only pass on its own scopes.",
    )
    # The maximum (ASSAY_TOKEN_MAX_DAYS, and the creating token's own expiry) is the service's rule.
    expires_in_days = serializers.IntegerField(min_value=1, default=90)
