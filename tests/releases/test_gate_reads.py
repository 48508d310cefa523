"""The gate's prepared single-row reads return what the ORM would, and keep the gate's 404s.

The gate is asked on every CI run, so it reads the model, the version, the team, the environment,
the stored decision and the requests with statements built once (``apps.core.fastpath``), and
checks visibility on the version it read (``rbac.visible``). These tests run on SQLite and, in
.ci/run's second pass, on PostgreSQL, where the statements are prepared on the server.
"""

from __future__ import annotations

import pytest

from apps.core import fastpath
from apps.releases import services
from apps.releases.models import ReleaseRequest
from tests.factories.registry import ModelVersionFactory
from tests.releases.conftest import who

pytestmark = pytest.mark.django_db


def _fields(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}


def test_a_version_read_by_model_and_number_is_the_orms_row(version):
    # given a second version of the same model
    other = ModelVersionFactory(model=version.model, number=2, created_by=version.created_by, sha256="c" * 64)
    reader = fastpath.RowByUniqueField(type(version), "model", "number")
    # when each is read by (model id, number)
    first, second = reader.get(version.model_id, 1), reader.get(version.model_id, 2)
    # then each equals the ORM's row, field by field (JSON and dates converted alike); a miss is None
    assert _fields(first) == _fields(type(version).objects.get(pk=version.pk))
    assert _fields(second) == _fields(type(version).objects.get(pk=other.pk))
    assert reader.get(version.model_id, 3) is None
    with pytest.raises(TypeError):
        reader.get(version.model_id)


def test_the_requests_of_a_version_come_newest_first_as_the_orm_orders_them(
    version, requester, request_release, staging, production
):
    # given two requests for staging (the first cancelled) and one for production
    first = request_release(requester, version, "staging")
    services.release_cancel(actor=who(requester), release_id=first.public_id, reason="wrong change window")
    second = request_release(requester, version, "staging")
    request_release(requester, version, "production", change_reference="CHG-1")
    reader = fastpath.RowsByFields(ReleaseRequest, "version", "environment", order_by="-created_at -id")
    # when the staging requests are read
    rows = reader.all(version.pk, staging.pk)
    # then they are the ORM's, in its order, with the decision JSON decoded
    expected = list(ReleaseRequest.objects.filter(version=version, environment=staging).order_by("-created_at", "-id"))
    assert [r.pk for r in rows] == [r.pk for r in expected] == [second.pk, first.pk]
    assert [_fields(r) for r in rows] == [_fields(r) for r in expected]
    assert isinstance(rows[0].decision, dict)


def test_a_version_out_of_the_callers_scope_is_a_404_and_an_audited_denial(
    version, make_user, other_team, api_client_for, audit_mark, staging
):
    # given a contributor of another team
    outsider = make_user("contributor", team=other_team, username="olga")
    mark = audit_mark()
    # when they ask the gate about a version they cannot see, and about one that does not exist
    client = api_client_for(outsider)
    hidden = client.get(f"/api/v1/models/{version.model.name}/versions/1/gate/", {"environment": "staging"})
    missing = client.get(f"/api/v1/models/{version.model.name}/versions/9/gate/", {"environment": "staging"})
    # then both are the same 404, and only the hidden one is audited as a denied read of that version
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"] == missing.json()["detail"]
    denied = mark.new(outcome="denied")
    assert [(e.action, e.target_type, e.target_id) for e in denied] == [
        ("registry.denied", "model_version", str(version.pk))
    ]
