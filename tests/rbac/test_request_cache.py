"""Authorization is decided afresh for every request: nothing a client sends (an X-Request-ID it
repeats) and no server thread's memory can keep a revoked role working."""

from __future__ import annotations

import threading

import pytest

from apps.core import request_cache
from apps.rbac import services as rbac
from apps.rbac.models import RoleBinding

PINNED = "attacker-chosen-request-id"


def revoke_elsewhere(system, binding_id: int) -> None:
    """Revoke as another server thread would: its own connection, its own context."""
    from django.db import connection

    errors: list[BaseException] = []

    def run() -> None:
        try:
            rbac.role_revoke(actor=system, binding_id=binding_id)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert not errors, errors


@pytest.mark.django_db(transaction=True)
def test_a_revoked_role_is_refused_on_the_next_request_with_the_same_request_id(client, make_user, system):
    auditor = make_user("auditor", username="auditor")
    client.force_login(auditor)
    binding = RoleBinding.objects.get(user=auditor, role="auditor")

    first = client.get("/api/v1/audit/events/", HTTP_X_REQUEST_ID=PINNED)
    assert first.status_code == 200
    assert first["X-Request-ID"] == PINNED

    revoke_elsewhere(system, binding.pk)
    second = client.get("/api/v1/audit/events/", HTTP_X_REQUEST_ID=PINNED)

    assert second.status_code == 403
    assert second["Content-Type"] == "application/problem+json"


@pytest.mark.django_db(transaction=True)
def test_a_revoked_role_is_refused_for_a_token_repeating_its_request_id(api_client_for, make_user, system):
    auditor = make_user("auditor", username="auditor")
    api = api_client_for(auditor, scopes=["read", "audit:read"])
    binding = RoleBinding.objects.get(user=auditor, role="auditor")
    assert api.get("/api/v1/audit/events/", HTTP_X_REQUEST_ID=PINNED).status_code == 200

    revoke_elsewhere(system, binding.pk)

    assert api.get("/api/v1/audit/events/", HTTP_X_REQUEST_ID=PINNED).status_code == 403


def test_grants_are_remembered_within_one_unit_of_work_only(db, make_user, principal_of, django_assert_num_queries):
    principal = principal_of(make_user("viewer"))
    with request_cache.unit_of_work(), django_assert_num_queries(1):
        rbac.grants_for(principal)
        rbac.grants_for(principal)
    with request_cache.unit_of_work(), django_assert_num_queries(1):
        rbac.grants_for(principal)  # a new unit reads again
    with django_assert_num_queries(2):  # outside any unit nothing is remembered
        rbac.grants_for(principal)
        rbac.grants_for(principal)


def test_each_job_a_worker_runs_starts_with_nothing_remembered(monkeypatch):
    from worker import runner

    seen = []

    def job_body(claim):
        grants = request_cache.bucket("rbac.grants")
        seen.append(dict(grants))
        grants[("user", 1)] = ("remembered by job", claim)
        return "succeeded"

    monkeypatch.setattr(runner, "_run_in_unit", job_body)

    assert runner._run("first") == runner._run("second") == "succeeded"
    assert seen == [{}, {}]
    assert request_cache.bucket("rbac.grants") is None  # and nothing outlives the jobs


def test_a_celery_task_remembers_nothing_past_its_end():
    from types import SimpleNamespace

    from controlplane.celery import _enter_task_context, _leave_task_context

    task = SimpleNamespace(name="jobs.run", request=SimpleNamespace(headers={"assay_request_id": PINNED}))
    for _ in range(2):
        _enter_task_context(task=task)
        assert request_cache.bucket("rbac.grants") == {}  # the same request id: still nothing carried over
        request_cache.bucket("rbac.grants")[("user", 1)] = ()
        _leave_task_context()
        assert request_cache.bucket("rbac.grants") is None
