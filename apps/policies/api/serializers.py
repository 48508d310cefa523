"""Shapes of the policies API (no writes here: services do them)."""

from __future__ import annotations

from rest_framework import serializers

from apps.core.models import MAX_ID


class PackCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=64)
    source = serializers.CharField(trim_whitespace=False)
    title = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    note = serializers.CharField(required=False, allow_blank=True, default="")


class VersionCreateInput(serializers.Serializer):
    source = serializers.CharField(trim_whitespace=False)
    note = serializers.CharField(required=False, allow_blank=True, default="")


class BindingCreateInput(serializers.Serializer):
    team = serializers.CharField(required=False, allow_blank=True, default="", help_text="Team name")
    model = serializers.CharField(required=False, allow_blank=True, default="", help_text="Model name")
    environment = serializers.CharField(required=False, allow_blank=True, default="")


class DryRunInput(serializers.Serializer):
    model = serializers.CharField()
    version = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    environment = serializers.CharField()
    production = serializers.BooleanField(required=False, allow_null=True, default=None)
    pack = serializers.CharField(required=False, allow_blank=True, default="", help_text="Evaluate this pack...")
    pack_version = serializers.IntegerField(
        required=False, allow_null=True, default=None, max_value=MAX_ID, help_text="...at this version"
    )
    release = serializers.JSONField(required=False, allow_null=True, default=None)


def _person(user, account) -> dict | None:
    if account is not None:
        return {"kind": "service_account", "name": account.name}
    if user is not None:
        return {"kind": "user", "name": user.username}
    return None


def version_data(version, *, with_source: bool = True) -> dict:
    data = {
        "number": version.number,
        "sha256": version.sha256,
        "note": version.note,
        "created_at": version.created_at,
        "created_by": _person(version.created_by, version.created_by_service_account),
    }
    if with_source:
        data["source"] = version.source
    return data


def binding_data(binding) -> dict:
    """A binding as the API shows it; read through ``selectors.policy_binding_list``, a model or team
    outside the reader's scope is null with ``hidden`` naming which ("model" or "team")."""
    hidden = (
        "model"
        if getattr(binding, "model_hidden", False)
        else "team"
        if getattr(binding, "team_hidden", False)
        else None
    )
    return {
        "id": binding.pk,
        "pack": binding.pack.name,
        "team": binding.team.name if binding.team_id and hidden != "team" else None,
        "model": binding.model.name if binding.model_id and hidden != "model" else None,
        "hidden": hidden,
        "environment": binding.environment or None,
        "scope": getattr(binding, "shown_scope", None) or binding.scope_label,
        "created_at": binding.created_at,
    }


def pack_data(pack, request=None, *, latest=None, versions=None, bindings=None) -> dict:
    data = {
        "name": pack.name,
        "title": pack.title,
        "description": pack.description,
        "shipped": pack.shipped,
        "package": pack.package,
        "latest_version": getattr(pack, "latest_number", None) if latest is None else latest.number,
        "url": request.build_absolute_uri(f"/api/v1/policies/{pack.name}/")
        if request
        else f"/api/v1/policies/{pack.name}/",
    }
    if latest is not None:
        data["source"] = latest.source
        data["sha256"] = latest.sha256
    if versions is not None:
        data["versions"] = [version_data(v, with_source=False) for v in versions]
    if bindings is not None:
        data["bindings"] = [binding_data(b) for b in bindings]
    return data


class PackOutput(serializers.Serializer):
    """Documentation-only shape of a pack (the view builds the dict)."""

    name = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    shipped = serializers.BooleanField()
    package = serializers.CharField()
    latest_version = serializers.IntegerField()
    url = serializers.URLField()


class DecisionOutput(serializers.Serializer):
    """Documentation-only shape of ``PolicyDecision.as_dict()``."""

    allow = serializers.BooleanField()
    violations = serializers.ListField(child=serializers.DictField())
    missing_evidence = serializers.ListField(child=serializers.DictField())
    required_approvals = serializers.ListField(child=serializers.DictField())
    rules = serializers.ListField(child=serializers.DictField())
    packs = serializers.ListField(child=serializers.DictField())
    evidence = serializers.ListField(child=serializers.DictField())
    artifact_sha256 = serializers.CharField()
    binding_digest = serializers.CharField()
    input = serializers.DictField()
