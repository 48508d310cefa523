"""The permission triad, driven by a table of routes (``tests/core/test_triad.py`` holds the table).

A ``Route`` row names one route and method of the URL conf, how to fill its URL and body from a
``World`` (a small set of objects owned by the team ``credit``), and what four callers get:

- anonymous: the API answers 401 problem+json with ``WWW-Authenticate``; the dashboard redirects to
  the sign-in page;
- ``nobody``, a signed-in person with no role anywhere: 404 for an object of a team they cannot see,
  a filtered 200 for a list, 403 for a page or endpoint that only a global role opens;
- a wrong role (when one exists for the route): 403, problem+json in the API;
- the right role: the route's success status.

Every denied write leaves an audit event with outcome ``denied`` and changes nothing else: no other
audit event, and no row added or removed in any table of the project.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.db import transaction
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from apps.accounts import services as accounts
from apps.accounts.principals import principal_for_user
from apps.audit.models import AuditEvent, AuditPending, AuditSeal
from apps.core.principals import Principal
from apps.rbac import services as rbac
from apps.rbac.roles import Scope
from tests.policies.test_api import GOOD

ANON, NOBODY, WRONG, RIGHT = "anonymous", "nobody", "wrong role", "right role"
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
API_SCOPES = list(Scope.values)  # every scope: each person is limited by their roles alone


@dataclass(frozen=True)
class Route:
    """One route and method, and what each kind of caller gets from it.

    ``name`` is the namespaced URL name; ``kwargs`` and ``body`` take the ``World``.
    ``right`` is the role that may use the route: ``"reviewer"`` is bound on the team that owns the
    world's objects, ``"admin@global"`` globally; None for a public route (everyone gets ``ok``).
    ``wrong`` is a role that may not (None when every role may, e.g. reads any team member has).
    ``nobody`` is what a signed-in person without a role gets (404, 403, or 200 for a filtered list).
    ``ok`` is the right role's status; ``note`` says why where it is not the obvious one.
    ``given`` prepares what only this row needs (its result is ``world.given``), e.g. a stored file:
    the world is built once per module, but storage is per test.
    ``multipart=True`` sends the body as a form with files (an upload) instead of JSON.
    ``hides`` gives a text of the world's that a filtered list shows the right role and not ``nobody``.
    ``writes=False`` for a POST that stores nothing (a dry run): its success leaves no audit event.
    ``audited=False`` only for routes whose refusal is no denial (an unknown API path; signing out
    without a session).
    """

    name: str
    method: str
    right: str | None
    wrong: str | None = None
    nobody: int = 404
    ok: int = 200
    kwargs: Callable[[World], dict] = lambda w: {}
    body: Callable[[World], dict] = lambda w: {}
    query: str = ""
    hides: Callable[[World], str] | None = None
    given: Callable[[World], Any] | None = None
    multipart: bool = False
    audited: bool = True
    writes: bool = True
    note: str = ""

    @property
    def api(self) -> bool:
        return self.name.startswith("api:")

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.method)

    def __str__(self) -> str:
        return f"{self.method} {self.name}"


def row(name: str, method: str, right: str | None, wrong: str | None = None, **kw: Any) -> Route:
    """One line of the table: ``row("api:registry-model-detail", "GET", "viewer", kwargs=...)``."""
    return Route(name=name, method=method, right=right, wrong=wrong, **kw)


@dataclass
class World:
    """The objects a route's URL needs, all owned by the team ``credit``, and people per role."""

    admin: Any
    team: Any
    model: Any
    version: Any
    dataset: Any
    stuck: Any
    run: Any
    pii: Any
    release: Any
    emergency: Any
    pack: Any
    binding: Any
    webhook: Any
    delivery: Any
    host: Any
    member: Any
    role_binding: Any
    token_id: str
    people: dict = field(default_factory=dict)
    given: Any = None  # what a row's ``given`` prepared, for this test only
    # production targets (``prod-lab`` carries the deployment, ``prod-spare`` none) and a pending deployment
    # of the break-glass release on ``prod-lab``
    target: Any = None
    spare_target: Any = None
    deployment: Any = None

    @staticmethod
    def pack_source(package: str) -> str:
        """A valid policy pack whose Rego package is ``assay.<package>``."""
        return POLICY_SOURCE.replace("assay.loan_limits", f"assay.{package}")

    def person(self, role: str | None):
        """A user holding ``role`` (``"reviewer"`` on the team, ``"admin@global"`` globally); None: no role."""
        key = role or "nobody"
        if key not in self.people:
            from tests.factories.accounts import UserFactory

            user = UserFactory(username=f"triad-{key.replace('@', '-').replace('_', '-')}")
            if role:
                name, _, scope = role.partition("@")
                rbac.role_grant(
                    actor=Principal.system("tests"), subject=user, role=name, team=None if scope else self.team
                )
            self.people[key] = user
        return self.people[key]


def build_world() -> World:
    """Build the objects every route of the table can address (a few dozen rows, a few ms)."""
    from apps.evidence.choices import RunStatus
    from apps.jobs.models import Job, JobStatus
    from apps.notifications import services as notifications
    from apps.notifications.models import WebhookDelivery
    from apps.policies import services as policies
    from apps.registry.choices import DatasetStatus, RiskTier, VersionStatus
    from apps.releases import services as releases
    from apps.releases.models import Environment
    from tests.factories.accounts import TeamFactory, UserFactory
    from tests.factories.policies import evidence_run, pii_summary
    from tests.factories.registry import DatasetFactory, ModelVersionFactory, RegisteredModelFactory

    system = Principal.system("tests")
    team = TeamFactory(name="credit")
    admin = UserFactory(username="triad-root")
    rbac.role_grant(actor=system, subject=admin, role="admin")
    root = principal_for_user(admin)
    Environment.objects.get_or_create(name="staging", defaults={"production": False})
    Environment.objects.get_or_create(
        name="production", defaults={"production": True, "requires_change_reference": True}
    )
    author = UserFactory(username="triad-author")
    accounts.team_member_add(actor=system, team=team, user=author)
    rbac.role_grant(actor=system, subject=author, role="contributor", team=team)
    model = RegisteredModelFactory(name="churn", owner_team=team, risk_tier=RiskTier.MINIMAL, data_categories=[])
    dataset = DatasetFactory(name="scored", owner_team=team, status=DatasetStatus.READY, schema=SCORED_SCHEMA)
    version = ModelVersionFactory(model=model, number=1, created_by=author, sha256="a" * 64, evaluation_dataset=dataset)
    ModelVersionFactory(model=model, number=2, created_by=author, sha256="c" * 64)
    # Version 3 and dataset 'stuck' wait for a verification whose job failed: what a retry is for.
    ModelVersionFactory(
        model=model,
        number=3,
        created_by=author,
        sha256="d" * 64,
        status=VersionStatus.PENDING_VERIFICATION,
        verification_job=Job.objects.create(kind="registry.verify_version", status=JobStatus.FAILED),
    )
    stuck = DatasetFactory(
        name="stuck",
        owner_team=team,
        status=DatasetStatus.PENDING_VERIFICATION,
        verification_job=Job.objects.create(kind="registry.verify_dataset", status=JobStatus.FAILED),
    )
    pii = evidence_run(kind="pii_scan", summary=pii_summary([("email", "feature", "EMAIL_ADDRESS")]), dataset=dataset)
    run = evidence_run(kind="bias", summary={}, version=version, dataset=dataset, status=RunStatus.QUEUED)
    pack = policies.policy_pack_create(actor=root, name="loan-limits", source=POLICY_SOURCE).pack
    binding = policies.policy_binding_create(actor=root, pack_name="loan-limits", model=model, environment="production")
    release = releases.release_request_create(
        actor=principal_for_user(author), model_name="churn", number=1, environment="staging", justification="x"
    )
    manager = UserFactory(username="triad-manager")
    rbac.role_grant(actor=system, subject=manager, role="release_manager")
    emergency = releases.release_request_create(
        actor=principal_for_user(manager),
        model_name="churn",
        number=1,
        environment="production",
        justification="outage",
        change_reference="CHG-1",
        emergency=True,
    )
    host = notifications.allowed_host_create(actor=root, host="127.0.0.1", allow_http=True)
    webhook, _ = notifications.webhook_create(
        actor=root, team=team, url="http://127.0.0.1:9/assay", events=["release.approved"]
    )
    delivery = WebhookDelivery.objects.filter(webhook=webhook).first()
    if delivery is None:
        notifications.webhook_ping(actor=root, webhook_id=webhook.public_id)
        delivery = WebhookDelivery.objects.filter(webhook=webhook).first()
    member = UserFactory(username="triad-member")
    accounts.team_member_add(actor=system, team=team, user=member)
    role_binding = rbac.role_grant(actor=system, subject=member, role="viewer", team=team)
    token, _ = accounts.token_create(actor=system, name="triad", scopes=["read"], user=member)
    target, spare_target, deployment = _deployment_rows(emergency, manager)
    return World(
        admin=admin,
        team=team,
        model=model,
        version=version,
        dataset=dataset,
        stuck=stuck,
        run=run,
        pii=pii,
        release=release,
        emergency=emergency,
        pack=pack,
        binding=binding,
        webhook=webhook,
        delivery=delivery,
        host=host,
        member=member,
        role_binding=role_binding,
        token_id=token.token_id,
        target=target,
        spare_target=spare_target,
        deployment=deployment,
    )


def _deployment_rows(emergency, manager):
    """Two production targets and a pending deployment of the break-glass release on the first, as
    ``deployment_start`` leaves it. Written as rows: the world is built inside the module's transaction,
    where the services' durable transactions cannot open (``tests/deployments`` drives the services)."""
    from django.utils import timezone

    from apps.deployments.models import Deployment, DeploymentTarget
    from apps.deployments.strategies import DEFAULT_STEPS, DEFAULT_THRESHOLDS

    production = emergency.environment
    target = DeploymentTarget.objects.create(name="prod-lab", kind="local", environment=production)
    spare = DeploymentTarget.objects.create(name="prod-spare", kind="local", environment=production)
    deployment = Deployment.objects.create(
        release=emergency,
        version=emergency.version,
        model=emergency.model,
        owner_team_id=emergency.owner_team_id,
        environment=production,
        target=target,
        service=emergency.model.name,
        strategy="direct",
        steps=DEFAULT_STEPS["direct"],
        thresholds=DEFAULT_THRESHOLDS["direct"],
        state="pending",
        next_check_at=timezone.now(),
        emergency=True,
        started_by=manager,
        started_by_name=manager.username,
    )
    return target, spare, deployment


SCORED_SCHEMA = [
    {"name": "x", "type": "double", "role": "feature"},
    {"name": "sex", "type": "string", "role": "sensitive"},
    {"name": "label", "type": "int", "role": "label"},
    {"name": "prediction", "type": "int", "role": "prediction"},
]

POLICY_SOURCE = GOOD  # a custom pack: one blocking rule, a model card


@pytest.fixture(scope="module")
def shared_world(django_db_setup, django_db_blocker):
    """One ``World`` per test module, in a transaction rolled back after the module's last test.

    Each test runs inside it in a savepoint of its own (pytest-django's ``db``), as Django's
    ``TestCase.setUpTestData`` does, so what one test changes is gone before the next.
    """
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            yield build_world()
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


@pytest.fixture
def world(shared_world, db) -> World:
    """The module's ``World``, with no people from earlier tests (their rows were rolled back)."""
    shared_world.people = {}
    shared_world.given = None
    return shared_world


def pending_facts_change(w: World):
    """A loosening change of the model's facts (a replaced intended use), proposed by the team's
    contributor and waiting for a compliance officer."""
    from apps.registry import services as registry

    team = principal_for_user(w.person("contributor"))
    # filling a blank fact applies at once; replacing a recorded one loosens it and waits
    registry.model_update(actor=team, name=w.model.name, changes={"intended_use": "Pre-screening only"})
    return registry.model_update(
        actor=team, name=w.model.name, changes={"intended_use": "Any consumer decision"}, reason="wider use"
    ).facts_change


def halted_deployment(w: World):
    """The world's deployment, halted (only a halted or paused rollout resumes)."""
    from apps.deployments.models import Deployment

    Deployment.objects.filter(pk=w.deployment.pk).update(state="halted", converged=True)
    return w.deployment


def serving_deployment(w: World):
    """The world's deployment, serving (only a serving deployment is undeployed)."""
    from apps.deployments.models import Deployment

    Deployment.objects.filter(pk=w.deployment.pk).update(
        state="succeeded", phase="done", traffic={"stable": None, "new": 100, "shadow": False}
    )
    return w.deployment


def finished_delivery(w: World):
    """The world's webhook delivery, failed for good (only a finished delivery is sent again)."""
    from apps.notifications.models import WebhookDelivery

    WebhookDelivery.objects.filter(pk=w.delivery.pk).update(state="failed")
    return w.delivery


def result_file(w: World):
    """A result file of the world's PII scan, its bytes in this test's storage."""
    import io

    from apps.core.storage import get_storage
    from apps.evidence.models import EvidenceFile

    stored = get_storage().save(io.BytesIO(b"column,entity\nemail,EMAIL_ADDRESS\n"), kind="evidence")
    return EvidenceFile.objects.create(
        run=w.pii,
        name="findings.csv",
        title="Findings",
        content_type="text/csv",
        key=stored.key,
        size=stored.size,
        sha256=stored.sha256,
    )


def stored_dataset(w: World):
    """The world's dataset with its bytes in this test's storage (what a download streams)."""
    import io

    from apps.core.storage import get_storage
    from apps.registry.models import Dataset

    stored = get_storage().save(io.BytesIO(b"x,sex,label,prediction\n0.5,f,1,1\n"), kind="datasets")
    Dataset.objects.filter(pk=w.dataset.pk).update(uri=stored.key, sha256=stored.sha256, size=stored.size)
    w.dataset.refresh_from_db()
    return w.dataset


def stored_report(w: World):
    """A finished release report on the world's release, its PDF in this test's storage."""
    import io

    from apps.core.storage import get_storage
    from apps.reports.models import Report

    stored = get_storage().save(io.BytesIO(b"%PDF-1.7 a report"), kind="reports")
    return Report.objects.create(
        kind="release",
        title="Release report: churn v1 to staging",
        subject=f"release:{w.release.public_id}",
        release=w.release,
        model=w.model,
        owner_team=w.team,
        formats=["pdf"],
        status="succeeded",
        progress=100,
        files={"pdf": {"key": stored.key, "sha256": stored.sha256, "size": stored.size, "name": "churn.pdf"}},
    )


def open_review(w: World, decided: bool = False):
    """An open access review holding the world's member's viewer binding (decided already when ``decided``)."""
    from apps.reports.models import AccessReview, AccessReviewItem

    review = AccessReview.objects.create(title="Triad review", team=w.team, started_by_name="root")
    AccessReviewItem.objects.create(
        review=review,
        binding_id=w.role_binding.pk,
        subject="user triad-member",
        subject_key=f"user:{w.member.pk}",
        role="viewer",
        scope=f"team {w.team.name}",
        decision="attested" if decided else "pending",
    )
    return review


def team_schedule(w: World):
    """A monthly period report of the world's team, due now."""
    from django.utils import timezone

    from apps.reports.models import ReportSchedule

    return ReportSchedule.objects.create(
        kind="period", cadence="monthly", team=w.team, formats=["pdf"], next_run_at=timezone.now(), created_by=w.admin
    )


def decided_review(w: World):
    return open_review(w, decided=True)


def report_token(w: World, role: str) -> str:
    """A download link's token for the stored report's PDF, issued to the person holding ``role``."""
    from apps.reports.services import report_download_start

    actor = principal_for_user(w.person(role))
    url = report_download_start(actor=actor, report_id=w.given.public_id, fmt="pdf").url
    return url.rstrip("/").rsplit("/", 1)[1]


def report_signer(w: World):
    """The installation's report-signing certificate (what the run command creates)."""
    from apps.reports.certificate import load_report_signer

    return load_report_signer(create=True)


def download_token(w: World, role: str) -> str:
    """A download link's token for the world's dataset, issued to the person holding ``role``."""
    from apps.registry.downloads import link_issue

    url = link_issue(actor=principal_for_user(w.person(role)), obj=w.dataset).url
    return url.rstrip("/").rsplit("/", 1)[1]


# ---------------------------------------------------------------------------------------------
# Calling a route as one caller, and checking what it answered.


def client_for(route: Route, user) -> Client:
    """An API client with a bearer token (every scope) for the API, a signed-in browser for the dashboard."""
    if route.api:
        client = APIClient()
        if user is not None:
            kwargs = {"user": user}
            _, raw = accounts.token_create(actor=Principal.system("tests"), name="triad", scopes=API_SCOPES, **kwargs)
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return client
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def call(route: Route, world: World, user, *, client=None):
    """Send the row's request as ``user`` (None: anonymous), through ``client`` when given."""
    url = reverse(route.name, kwargs=route.kwargs(world)) + route.query
    client = client or client_for(route, user)
    method = route.method.lower()
    if route.method == "GET":
        return client.get(url)
    if route.api:
        return getattr(client, method)(url, route.body(world), format="multipart" if route.multipart else "json")
    return getattr(client, method)(url, route.body(world))


# Columns a request may touch without changing anything a person would call state: when a token or
# a session was last used, and a model's version-number counter (drawn in a statement of its own so
# that no lock is held during an upload: a refused registration uses up its number, like a sequence).
BOOKKEEPING = {"last_used_at", "last_used_ip", "last_login", "last_version_number"}


# URL arguments that choose what to do, not which object: kept when the object is made up.
NOT_OBJECTS = {"fmt", "kind", "action"}


def made_up(kwargs: dict) -> dict:
    """The same URL arguments naming objects that do not exist (ids, UUIDs and names made up)."""
    import uuid

    out = {}
    for key, value in kwargs.items():
        if key in NOT_OBJECTS:
            out[key] = value
        elif isinstance(value, int):
            out[key] = 999_999
        elif isinstance(value, uuid.UUID):
            out[key] = uuid.uuid4()
        else:
            out[key] = "no-such-thing"
    return out


def fingerprint() -> dict[str, Any]:
    """Every row of every table of the project but the audit trail's (its events, seals and the sealer's work
    list; bookkeeping columns left out)."""
    rows: dict[str, Any] = {}
    for model in django_apps.get_models():
        if not model.__module__.startswith("apps.") or model in (AuditEvent, AuditPending, AuditSeal):
            continue
        columns = [f.attname for f in model._meta.concrete_fields if f.attname not in BOOKKEEPING]
        rows[model._meta.label] = list(model._default_manager.order_by("pk").values_list(*columns))
    return rows


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, str]:
    """What differs between two fingerprints, per table: rows gone, rows new (at most two of each shown)."""
    found = {}
    for label, rows in before.items():
        now = after.get(label, [])
        if rows != now:
            gone = [r for r in rows if r not in now]
            new = [r for r in now if r not in rows]
            found[label] = f"gone {gone[:2]}, new {new[:2]}"
    return found


def last_event_id() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def denied_write_left_only_its_denial(route: Route, before: dict, mark: int, who: str) -> None:
    """A refused write leaves one or more ``denied`` events and no other change (no row added, removed or edited)."""
    events = list(AuditEvent.objects.filter(id__gt=mark).order_by("id"))
    outcomes = [(e.action, e.outcome) for e in events]
    assert events and all(e.outcome == "denied" for e in events), f"{route} as {who}: audit events {outcomes}"
    after = fingerprint()
    changed = changes(before, after)
    assert not changed, f"{route} as {who} was refused but changed {changed}"


def is_problem(response) -> bool:
    return response["Content-Type"].startswith("application/problem+json")
