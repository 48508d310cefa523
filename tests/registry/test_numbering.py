"""Version numbers under concurrency: each registration draws its number in a statement of its own.

These tests run outside the test's wrapping transaction (``transaction=True``), the way an API
request runs, so the draw commits on its own as it does in production. The threaded ones need
PostgreSQL: SQLite lets one writer in at a time.
"""

from __future__ import annotations

import contextlib
import secrets
import threading

import pytest
from django.db import connection

from apps.audit.models import AuditEvent
from apps.jobs.models import Job
from apps.registry import selectors
from apps.registry.models import ModelVersion, RegisteredModel
from apps.registry.services import versions
from tests.factories.registry import ModelVersionFactory
from tests.registry.fixtures import register_reference

pytestmark = pytest.mark.django_db(transaction=True)

BUCKET = "ml-exports"


@pytest.fixture(autouse=True)
def _allowed_bucket(settings):
    settings.ASSAY_ALLOWED_S3_BUCKETS = [BUCKET]


def register(actor, digest: str | None = None) -> ModelVersion:
    return register_reference(actor, bucket=BUCKET, digest=digest)


def needs_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip(
            "SQLite lets one writer in at a time, so registrations cannot race; "
            "this runs on PostgreSQL (DATABASE_URL=postgres://..., as .ci/run does)"
        )


def run_threads(count: int, work) -> list[BaseException]:
    start = threading.Barrier(count)
    errors: list[BaseException] = []

    def body(n: int) -> None:
        try:
            start.wait()
            work(n)
        except BaseException as exc:  # collected for the caller
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=body, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_numbers_follow_each_other_and_a_refused_retry_uses_none(model, contributor_principal):
    # given: two versions
    first, second = register(contributor_principal), register(contributor_principal)
    # when: CI retries the second registration (same digest), then registers a new artifact
    with pytest.raises(versions.DuplicateArtifact) as refused:
        register(contributor_principal, digest=second.sha256)
    third = register(contributor_principal)
    # then
    assert [first.number, second.number, third.number] == [1, 2, 3]
    assert refused.value.extra["existing_version"] == 2
    assert RegisteredModel.objects.get(pk=model.pk).last_version_number == 3
    assert AuditEvent.objects.filter(action="model_version.created").count() == 3


def test_numbering_continues_after_versions_written_without_a_draw(model, contributor_principal):
    # given: versions 1..4 imported straight into the table (the counter still says 0)
    for number in range(1, 5):
        ModelVersionFactory(model=model, number=number)
    # when
    version = register(contributor_principal)
    # then
    assert version.number == 5


def test_concurrent_registrations_to_one_model_get_distinct_gapless_numbers(model, contributor_principal):
    needs_postgresql()
    # given: 12 CI jobs registering 8 versions each at the same moment
    threads, each = 12, 8
    # when
    errors = run_threads(threads, lambda n: [register(contributor_principal) for _ in range(each)])
    # then: every registration landed, numbered 1..96 with no gap or repeat, each audited once
    assert errors == []
    numbers = sorted(ModelVersion.objects.filter(model=model).values_list("number", flat=True))
    assert numbers == list(range(1, threads * each + 1))
    assert AuditEvent.objects.filter(action="model_version.created", outcome="success").count() == threads * each


def test_racing_identical_registrations_create_one_version_and_name_it_to_the_others(model, contributor_principal):
    needs_postgresql()
    # given: 8 retries of one CI job, all at once, with the same artifact digest
    digest = secrets.token_hex(32)
    created: list[ModelVersion] = []
    errors = run_threads(8, lambda n: created.append(register(contributor_principal, digest=digest)))
    # then: one version; every other attempt is a 409 naming it
    assert len(created) == 1
    assert len(errors) == 7 and all(isinstance(e, versions.DuplicateArtifact) for e in errors), errors
    assert {e.extra["existing_version"] for e in errors} == {created[0].number}
    assert ModelVersion.objects.filter(model=model).count() == 1
    assert AuditEvent.objects.filter(action="model_version.created").count() == 1
    # and a refused attempt left nothing behind: its job, version and event were one statement
    assert Job.objects.count() == 1
    # and the next registration still gets a fresh, higher number
    assert register(contributor_principal).number > created[0].number


def test_on_postgresql_a_registration_is_three_statements_and_no_transaction_round_trip(model, contributor_principal):
    needs_postgresql()
    from django.test.utils import CaptureQueriesContext

    from apps.core import request_cache
    from apps.rbac import services as rbac

    # given a model (its row read once, as the API does before the service's own read)
    register(contributor_principal)

    # when a version is registered outside any transaction, as an API request is: in the request's
    # unit of work, whose caller's grants were read with its token (here: by grants_for, beforehand)
    with request_cache.unit_of_work():
        rbac.grants_for(contributor_principal)
        with CaptureQueriesContext(connection) as queries:
            version = register(contributor_principal)

    # then: the model read, the number's draw, and one INSERT of the job, the version and its event
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    assert statements == ["SELECT", "UPDATE", "WITH"], [q["sql"][:80] for q in queries.captured_queries]
    version.refresh_from_db()
    job = Job.objects.get(pk=version.verification_job_id)
    assert (job.kind, job.params, job.status) == ("registry.verify_version", {"version_id": version.pk}, "queued")
    event = AuditEvent.objects.get(action="model_version.created", target_id=str(version.pk))
    assert event.after["number"] == version.number and event.request_id == job.request_id


def test_the_model_list_counts_the_versions_that_exist_after_racing_registrations(model, contributor_principal):
    needs_postgresql()
    # given: 6 CI jobs registering 3 new artifacts each, and 6 retries of one more artifact, all at once
    digest = secrets.token_hex(32)

    def work(n: int) -> None:
        if n % 2:
            for _ in range(3):
                register(contributor_principal)
        else:
            with contextlib.suppress(versions.DuplicateArtifact):  # a 409: the racing retry that lost
                register(contributor_principal, digest=digest)

    errors = run_threads(12, work)
    # when
    listed = selectors.model_list(actor=contributor_principal).get(pk=model.pk)
    # then: the count is the versions that exist, whatever numbers the refused retries drew
    assert errors == []
    assert listed.version_count == ModelVersion.objects.filter(model=model).count() == 6 * 3 + 1
