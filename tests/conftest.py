"""Shared fixtures: principals and API clients per role, factories, audit helpers."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from apps.accounts import services as accounts
from apps.accounts.principals import principal_for_user
from apps.audit.models import AuditEvent
from apps.core.principals import Principal
from apps.rbac import services as rbac
from tests.factories.accounts import TeamFactory, UserFactory
from tests.support.db import patch_test_flush

patch_test_flush()

REQUIRE_SERVICES = os.environ.get("ASSAY_REQUIRE_SERVICES") == "1"


_skipped_services: list[str] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and item.get_closest_marker("service") is not None:
        _skipped_services.append(f"{item.nodeid}: {report.longrepr[-1] if report.longrepr else ''}")


# Fixtures through which a test reaches the database (pytest-django blocks it for any other test).
_DATABASE_FIXTURES = {
    "db",
    "transactional_db",
    "django_db_reset_sequences",
    "django_db_serialized_rollback",
    "live_server",
}


def reaches_a_server(item: pytest.Item) -> bool:
    """Whether ``item``'s outcome can depend on which database, cache or broker the run points at: it touches
    the database (pytest-django refuses that to any other test), or it is marked ``broker`` (the Celery broker)
    or ``backend`` (the cache, or anything else configured by the environment without a database). A test marked
    ``embedded_pass`` is about another part (a browser, a Kubernetes or SageMaker target, the embedded demo),
    which it reaches through the database the same way on every setup: it runs in the embedded pass only."""
    if item.get_closest_marker("embedded_pass"):
        return False
    if item.get_closest_marker("django_db") or _DATABASE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        return True
    return any(item.get_closest_marker(name) for name in ("broker", "backend"))


def pytest_collection_modifyitems(config, items):
    """With ASSAY_SERVER_TESTS_ONLY=1 (``.ci/run``'s pass on PostgreSQL and Redis) run only the tests that reach
    the database, cache or broker: the others (engines, drivers against their own test servers, manifests,
    parsers, and the ``embedded_pass`` ones) run the same on every setup and have run in the embedded pass."""
    if os.environ.get("ASSAY_SERVER_TESTS_ONLY") != "1":
        return
    keep = [item for item in items if reaches_a_server(item)]
    if len(keep) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if not reaches_a_server(item)])
        items[:] = keep


def pytest_sessionfinish(session, exitstatus):
    """With ASSAY_REQUIRE_SERVICES=1 (set by .ci/run) a skipped ``service`` test fails the run."""
    if not REQUIRE_SERVICES or not _skipped_services:
        return
    session.exitstatus = 1
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter:
        reporter.write_line(
            f"FAILED: {len(_skipped_services)} test(s) needing a real server were skipped "
            "while ASSAY_REQUIRE_SERVICES=1:",
            red=True,
        )
        for line in _skipped_services:
            reporter.write_line(f"  {line}", red=True)


@pytest.fixture(scope="session", autouse=True)
def _job_handlers():
    """Register every job handler, as a worker's entry point does, so a test may run jobs through
    ``worker.runner`` in this process."""
    import worker.tasks  # noqa: F401


@pytest.fixture(autouse=True)
def _isolated_storage(settings, tmp_path):
    """Each test gets its own artifact and checkpoint folders, and its own signing keys."""
    settings.ASSAY_STORAGE_URL = (tmp_path / "artifacts").as_uri()
    settings.ASSAY_CHECKPOINT_URL = (tmp_path / "checkpoints").as_uri()
    settings.ASSAY_AUDIT_SIGNING_KEY_FILE = str(tmp_path / "keys" / "audit.pem")
    settings.ASSAY_AUDIT_TRUSTED_KEYS_DIR = str(tmp_path / "keys" / "trusted")
    settings.ASSAY_REPORT_SIGNING_KEY_FILE = str(tmp_path / "keys" / "report-signing.pem")
    settings.ASSAY_REPORT_CERTIFICATE_FILE = str(tmp_path / "keys" / "report-signing.crt")
    yield
    shutil.rmtree(tmp_path / "artifacts", ignore_errors=True)


@pytest.fixture(autouse=True)
def _cache_namespace_per_test():
    """Each test counts rate limits and flood summaries afresh: its own key prefix in the shared cache
    (a folder, or Redis with ASSAY_CACHE_URL), so nothing carries over from one test to the next."""
    from django.core.cache import caches

    cache = caches["default"]
    previous = cache.key_prefix
    cache.key_prefix = f"test-{uuid.uuid4().hex[:16]}"
    yield
    cache.key_prefix = previous


@pytest.fixture
def system() -> Principal:
    return Principal.system("tests")


@pytest.fixture
def team(db):
    return TeamFactory(name="credit")


@pytest.fixture
def other_team(db):
    return TeamFactory(name="marketing")


@pytest.fixture
def make_user(db, system) -> Callable:
    """make_user("reviewer", team=t) -> a user holding that role (globally, on a team or on a model)."""

    def make(role: str | None = None, *, username: str | None = None, team=None, model=None, member_of=()):
        user = UserFactory(username=username) if username else UserFactory()
        for t in member_of:
            accounts.team_member_add(actor=system, team=t, user=user)
        if role:
            rbac.role_grant(actor=system, subject=user, role=role, team=team, model=model)
        return user

    return make


@pytest.fixture
def api_client_for(system) -> Callable:
    """api_client_for(user, scopes=[...]) -> an APIClient sending a real bearer token."""

    def make(subject, scopes=None):
        from apps.accounts.models import ServiceAccount

        kwargs = {"service_account": subject} if isinstance(subject, ServiceAccount) else {"user": subject}
        from apps.rbac.roles import Scope

        _, raw = accounts.token_create(actor=system, name="test", scopes=scopes or list(Scope.values), **kwargs)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        client.token = raw
        return client

    return make


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


@pytest.fixture
def principal_of() -> Callable:
    return principal_for_user


@pytest.fixture
def audit_mark(db) -> Callable:
    """mark = audit_mark(); ...; mark.new() -> events written since, oldest first."""

    class Mark:
        def __init__(self) -> None:
            last = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()
            self.last = last or 0

        def new(self, **filters):
            return list(AuditEvent.objects.filter(id__gt=self.last, **filters).order_by("id"))

        def actions(self, **filters) -> list[str]:
            return [e.action for e in self.new(**filters)]

    return Mark


@pytest.fixture
def react(db, django_capture_on_commit_callbacks) -> Callable:
    """react() -> runs every queued event reaction through the real runner, as workers would, until none is
    left (a reaction may publish further events); returns ``[(kind, subscriber, outcome)]``, oldest first.

    A reaction that does not succeed fails the test, unless ``react(allow_failures=True)``.
    """
    from apps.jobs.events import KIND_PREFIX
    from apps.jobs.models import Job, JobStatus
    from worker.runner import run_job

    def go(*, allow_failures: bool = False) -> list[tuple[str, str, str]]:
        done: list[tuple[str, str, str]] = []
        while True:
            queued = list(
                Job.objects.filter(status=JobStatus.QUEUED, kind__startswith=KIND_PREFIX).order_by("pk")[:100]
            )
            if not queued:
                return done
            for job in queued:
                with django_capture_on_commit_callbacks(execute=True):
                    outcome = run_job(job.pk)
                if outcome != "succeeded" and not allow_failures:
                    job.refresh_from_db()
                    pytest.fail(f"reaction {job.kind} ({job.params.get('subscriber')}) {outcome}: {job.error}")
                done.append((job.kind, job.params.get("subscriber"), outcome))

    return go
