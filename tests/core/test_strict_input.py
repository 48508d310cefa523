"""Every PATCH and PUT endpoint refuses, by name, a field it does not take (unknown or read-only): 400, no change."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from apps.core.api.strict import StrictInput
from apps.notifications.models import Webhook
from apps.registry.models import RegisteredModel
from tests.factories.accounts import UserFactory
from tests.factories.registry import RegisteredModelFactory

pytestmark = pytest.mark.django_db


def _model(team):
    return RegisteredModelFactory(name="churn", owner_team=team)


def _webhook(team):
    return Webhook.objects.create(
        owner_team=team, url="https://hooks.example.test/x", events=["policy.changed"], secret_encrypted="x"
    )


def _target(team):
    from apps.deployments.models import DeploymentTarget
    from apps.rbac.models import Environment

    env, _ = Environment.objects.get_or_create(name="staging")
    return DeploymentTarget.objects.create(name="lab", kind="local", environment=env)


def _user(team):
    return UserFactory(username="alice", email="alice@example.test")


# URL name -> (make the object, its path, a read-only field of its output, a field it takes, how to read that field)
EDITABLE = {
    "registry-model-detail": (
        _model,
        lambda obj: f"/api/v1/models/{obj.name}/",
        "owner_team",
        ("description", "changed"),
        lambda obj: RegisteredModel.objects.get(pk=obj.pk).description,
    ),
    "webhook-detail": (
        _webhook,
        lambda obj: f"/api/v1/webhooks/{obj.public_id}/",
        "created_at",
        ("description", "changed"),
        lambda obj: Webhook.objects.get(pk=obj.pk).description,
    ),
    "target-detail": (
        _target,
        lambda obj: f"/api/v1/targets/{obj.public_id}/",
        "kind",
        ("description", "changed"),
        lambda obj: type(obj).objects.get(pk=obj.pk).description,
    ),
    "accounts-user-detail": (
        _user,
        lambda obj: f"/api/v1/users/{obj.username}/",
        "date_joined",
        ("first_name", "changed"),
        lambda obj: type(obj).objects.get(pk=obj.pk).first_name,
    ),
}


def _editable_views() -> dict[str, type]:
    """URL name -> view class, for every API view that answers PATCH or PUT."""
    found = {}

    def walk(patterns):
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns)
            elif isinstance(p, URLPattern):
                view = getattr(p.callback, "view_class", None) or getattr(p.callback, "cls", None)
                # the catch-all answers every method with 401/404
                if p.name != "not_found" and view is not None and (hasattr(view, "patch") or hasattr(view, "put")):
                    found[p.name] = view

    walk(get_resolver().url_patterns)
    return found


def test_the_table_covers_every_patch_and_put_endpoint():
    assert set(_editable_views()) == set(EDITABLE)


@pytest.mark.parametrize("url_name", sorted(EDITABLE))
def test_unknown_and_read_only_fields_are_refused_by_name_and_nothing_changes(
    url_name, make_user, api_client_for, team, audit_mark
):
    # given the object and an admin (who may change it)
    make, path_of, read_only, (field, value), read = EDITABLE[url_name]
    obj = make(team)
    before = read(obj)
    admin = api_client_for(make_user("admin"))
    mark = audit_mark()
    # when a PATCH carries a field it takes, one it shows but does not take, and one it does not know
    response = admin.patch(path_of(obj), {field: value, read_only: "x", "no_such_field": 1}, format="json")
    # then
    assert response.status_code == 400, response.content
    body = response.json()
    assert response["Content-Type"] == "application/problem+json"
    assert body["code"] == "validation_failed"
    assert body["read_only_fields"] == [read_only] and body["unknown_fields"] == ["no_such_field"]
    assert set(body["errors"]) == {read_only, "no_such_field"}
    assert read_only in body["detail"] and "no_such_field" in body["detail"]
    assert read(obj) == before
    assert mark.new() == []
    # and the same request without them applies
    assert admin.patch(path_of(obj), {field: value}, format="json").status_code == 200
    assert read(obj) == value


def test_every_patch_input_serializer_is_strict():
    from apps.accounts.api.admin_serializers import UserUpdateInput
    from apps.deployments.api.serializers import TargetUpdateInput
    from apps.notifications.api.serializers import WebhookUpdateInput
    from apps.registry.api.serializers import ModelUpdateInput

    for serializer in (ModelUpdateInput, WebhookUpdateInput, UserUpdateInput, TargetUpdateInput):
        assert issubclass(serializer, StrictInput)
        assert serializer.read_only_names()


def test_a_string_field_refuses_a_json_number_instead_of_turning_it_into_text(make_user, api_client_for):
    # given an admin allowing a webhook host
    from apps.notifications.models import AllowedWebhookHost

    admin = api_client_for(make_user("admin"))
    # when the host is sent as a JSON number (the schema says string)
    response = admin.post("/api/v1/webhook-allowed-hosts/", {"host": 1270001, "note": "lab"}, format="json")
    # then it is refused by name, and nothing was allowed
    assert response.status_code == 400, response.json()
    assert response.json()["errors"]["host"] == ["Not a valid string."]
    assert not AllowedWebhookHost.objects.exists()
    # while the same host as text is taken
    ok = admin.post("/api/v1/webhook-allowed-hosts/", {"host": "127.0.0.1", "note": "lab"}, format="json")
    assert ok.status_code == 201, ok.json()
