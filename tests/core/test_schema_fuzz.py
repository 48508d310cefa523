"""The published OpenAPI schema tells the truth: generated requests to every operation get declared answers.

Schemathesis reads /api/v1/schema/ from the app itself and, for each operation, sends a fixed number
of generated requests through WSGI, in-process, against the test database. Each request is sent as
one of four callers (an admin, a team contributor, a global viewer, anonymous: real bearer tokens),
and each path parameter is either generated or replaced by a real object's key, so that object
routes answer from real rows as well as from missing ones. Every answer must be declared: no 5xx,
a declared status, a declared content type, a body and headers matching the declared schema.

Deterministic (``derandomize=True``) and bounded (``EXAMPLES`` per operation), so CI stays fast.
Run it alone with ``scripts/test tests/core/test_schema_fuzz.py -q``; set ``ASSAY_FUZZ_EXAMPLES``
to send more requests per operation, ``ASSAY_FUZZ_RANDOM=1`` for new ones each run (docs/api.md).
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi import checks as openapi_checks

from apps.accounts import services as accounts
from apps.accounts.principals import principal_for_user
from apps.core.principals import Principal
from apps.jobs import services as jobs
from apps.notifications import services as notifications
from apps.policies import services as policies
from apps.rbac import services as rbac
from apps.rbac.roles import Scope
from apps.releases import services as releases
from controlplane.wsgi import application
from tests.factories.accounts import TeamFactory, UserFactory
from tests.factories.policies import bias_run, compliant_model, compliant_version, mark_false_positive
from tests.factories.registry import DatasetFactory, ModelVersionFactory
from tests.policies.test_api import GOOD

EXAMPLES = int(os.environ.get("ASSAY_FUZZ_EXAMPLES", "20"))
# CI repeats the same requests every run; ASSAY_FUZZ_RANDOM=1 draws new ones, for a local search.
DERANDOMIZE = os.environ.get("ASSAY_FUZZ_RANDOM") != "1"
ROLES = ("admin", "contributor", "viewer", "anonymous")

# Checks not run, each with its reason. Every other check schemathesis has runs on every answer.
EXCLUDED_CHECKS = {
    # "Schema-valid data must be accepted (2xx)": most generated bodies name objects that do not
    # exist or break domain rules (state, segregation of duties) that a JSON schema cannot express;
    # those are refused with declared 400/403/404/409 problems, which the other checks verify.
    openapi_checks.positive_data_acceptance,
}

# A body made invalid by type (null for a string, true for an object) cannot be written as a form:
# multipart and urlencoded bodies carry only strings, so "null" arrives as the text "null" and a bare
# value as an empty form, both of which are valid input. Those cases keep every other check.
FORM_ENCODED_NEGATIVE_BODY_EXCLUDED = [openapi_checks.negative_data_rejection]
FORM_MEDIA_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")

schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", application)


@pytest.fixture
def _connection_kept():
    """Keep the test's database connection across requests, as Django's test client does: the WSGI
    handler would otherwise close it after each answer (and the test's transaction with it)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def _short_gate_waits(settings):  # pytest-django's settings (the module's ``settings`` is hypothesis')
    """The gate's ``?wait=`` is bounded by ``ASSAY_GATE_MAX_WAIT``: a short bound keeps generated waits short."""
    settings.ASSAY_GATE_MAX_WAIT, settings.ASSAY_GATE_POLL_SECONDS = 0.05, 0.01


@pytest.fixture
def world(db, _connection_kept):
    """Real rows for the path parameters, and a bearer token per role.

    Objects an operation may destroy (a token to revoke, a role binding, a team member, an allowed
    host) are spares, so that the callers keep their own access for the whole run.
    """
    system = Principal.system("schema fuzz")
    # a live worker, as in any running installation: /health/?strict=true answers 200, not 503 degraded
    jobs.worker_heartbeat(name="fuzz:1", kind="database", beat=True, started_at=timezone.now())
    team = TeamFactory(name="credit")
    admin = UserFactory(username="ada")
    rbac.role_grant(actor=system, subject=admin, role="admin")
    contributor = UserFactory(username="cora")
    rbac.role_grant(actor=system, subject=contributor, role="contributor", team=team)
    viewer = UserFactory(username="vic")
    rbac.role_grant(actor=system, subject=viewer, role="viewer")
    spare = UserFactory(username="sam")
    accounts.team_member_add(actor=system, team=team, user=spare)
    spare_binding = rbac.role_grant(actor=system, subject=spare, role="viewer", team=team)
    spare_token, _ = accounts.token_create(actor=system, name="spare", user=spare, scopes=["read"])
    scopes = list(Scope.values)  # every scope: each role is limited by its grants alone
    tokens = {
        name: accounts.token_create(actor=system, name="fuzz", user=user, scopes=scopes)[1]
        for name, user in (("admin", admin), ("contributor", contributor), ("viewer", viewer))
    }

    model = compliant_model(name="churn", owner_team=team)
    version = compliant_version(model)
    invalid = ModelVersionFactory(model=model, status="invalid", number=version.number + 1)
    dataset = DatasetFactory(owner_team=team, status="ready", sha256="b" * 64)
    run = bias_run(version)
    mark_false_positive(run, "sex")
    officer = principal_for_user(admin)
    policies.policy_pack_create(actor=officer, name="loan-limits", source=GOOD)
    policy_binding = policies.policy_binding_create(actor=officer, pack_name="loan-limits", team=team)
    release = releases.release_request_create(
        actor=principal_for_user(contributor),
        model_name="churn",
        number=version.number,
        environment="staging",
        justification="schema fuzz",
    )
    host = notifications.allowed_host_create(actor=officer, host="127.0.0.1", allow_http=True)
    notifications.allowed_host_create(actor=officer, host="spare.example.test")
    webhook, _ = notifications.webhook_create(
        actor=officer, team=team, url="http://127.0.0.1:9/in", events=["release.approved"]
    )
    # A break-glass production release of the version, deployed to a local target (a spare target to delete)
    from apps.deployments import services as deployments
    from apps.releases.models import Environment

    manager = UserFactory(username="max")
    rbac.role_grant(actor=system, subject=manager, role="release_manager")
    Environment.objects.get_or_create(name="production", defaults={"production": True})
    emergency = releases.release_request_create(
        actor=principal_for_user(manager),
        model_name="churn",
        number=version.number,
        environment="production",
        justification="schema fuzz",
        change_reference="CHG-1",
        emergency=True,
    )
    target = deployments.target_create(actor=officer, name="prod-lab", kind="local", environment="production")
    deployments.target_create(actor=officer, name="prod-spare", kind="local", environment="production")
    deployment = deployments.deployment_start(
        actor=principal_for_user(manager), release_id=emergency.public_id, target="prod-lab"
    )
    # A key per parameter (or per collection, where a name means different things), a few where the
    # objects differ in kind: a ready and an invalid version.
    real = {
        "name": {"models": model.name, "teams": team.name, "policies": "loan-limits"},
        "number": {"models": (version.number, invalid.number), "policies": 1},
        "dataset_id": dataset.pk,
        "run_id": str(run.pk),
        "release_id": str(release.pk),
        "webhook_id": str(webhook.pk),
        "host_id": host.pk,
        "binding_id": {"role-bindings": spare_binding.pk, "policies": policy_binding.pk},
        "username": spare.username,
        "token_id": str(spare_token.pk),
        "target_id": str(target.public_id),
        "deployment_id": str(deployment.public_id),
    }
    # Query filters that name objects, so that filtered lists and the gate answer from real rows too.
    real_query = {
        "environment": "staging",
        "model": model.name,
        "team": team.name,
        "user": spare.username,
        "target": "prod-lab",
    }
    return {"tokens": tokens, "real": real, "real_query": real_query}


def _real_value(real: dict, path: str, parameter: str, pick: int):
    value = real.get(parameter)
    if isinstance(value, dict):
        collection = path.removeprefix("/api/v1/").split("/")[0]
        value = value.get(collection)
    if isinstance(value, tuple):
        value = value[pick % len(value)]
    return value


@schema.parametrize()
@schema.given(role=st.sampled_from(ROLES), real=st.integers(min_value=0, max_value=2))
@settings(
    max_examples=EXAMPLES,
    derandomize=DERANDOMIZE,
    deadline=None,
    database=None,
    # One set of rows per operation, shared by its examples (and changed by them, as a client would).
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_every_answer_is_declared(case, role, real, world):
    # given: a caller, and real objects behind the path parameters two times in three; a part that
    # schemathesis made invalid on purpose (a malformed Authorization header, a path parameter of
    # the wrong type) is sent as generated, so that the answer must be the declared refusal
    negative = {
        location for location, info in (case.meta.components or {}).items() if info.mode == GenerationMode.NEGATIVE
    }
    headers = {}
    if role != "anonymous" and ParameterLocation.HEADER not in negative:
        headers["Authorization"] = f"Bearer {world['tokens'][role]}"
    if real and ParameterLocation.PATH not in negative:
        for parameter in list(case.path_parameters or {}):
            value = _real_value(world["real"], case.path, parameter, real - 1)
            if value is not None:
                case.path_parameters[parameter] = value
    if real and ParameterLocation.QUERY not in negative:
        for parameter in list(case.query or {}):
            if parameter in world["real_query"]:
                case.query[parameter] = world["real_query"][parameter]
    excluded = list(EXCLUDED_CHECKS)
    if ParameterLocation.BODY in negative and (case.media_type or "").startswith(FORM_MEDIA_TYPES):
        excluded += FORM_ENCODED_NEGATIVE_BODY_EXCLUDED
    # when / then: the answer is one the schema declares, and no server error
    case.call_and_validate(headers=headers, excluded_checks=excluded)
