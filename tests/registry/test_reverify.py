"""Retrying a verification whose job failed through no fault of the bytes.

A verification job that cannot reach storage, or whose workers all die, fails and leaves its
version or dataset ``pending_verification``. ``POST .../verify/`` (and the dashboard's "Retry
verification") gives it a new job. Jobs run in-process with the real runner
(``worker.runner.run_job``), as a Celery worker runs them; storage is made unreachable for real
by pointing it at an S3 endpoint on a closed local port.
"""

from __future__ import annotations

import socket
import threading
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

import worker.tasks.registry  # noqa: F401 - registers the registry job handlers
from apps.audit.models import AuditEvent
from apps.core.errors import InvalidTransition
from apps.jobs import services as jobs
from apps.jobs.models import Job, JobStatus
from apps.registry import services
from apps.registry.models import Dataset, ModelVersion
from tests.registry import artifacts
from tests.registry.fixtures import job_of, upload
from worker.runner import run_job

BUCKET = "ml-exports"
VERSION_VERIFY = "/api/v1/models/churn/versions/1/verify/"


def closed_port() -> int:
    """A local TCP port nothing listens on (taken from the OS, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def storage_down(settings, monkeypatch):
    """storage_down() -> a context in which the artifact storage is an S3 server that does not answer."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    settings.ASSAY_ALLOWED_S3_BUCKETS = [BUCKET]

    @contextmanager
    def down():
        saved = settings.ASSAY_STORAGE_URL, settings.AWS_ENDPOINT_URL
        settings.ASSAY_STORAGE_URL = "s3://assay-down/registry"
        settings.AWS_ENDPOINT_URL = f"http://127.0.0.1:{closed_port()}"
        try:
            yield
        finally:
            settings.ASSAY_STORAGE_URL, settings.AWS_ENDPOINT_URL = saved

    return down


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """run(obj) -> runs the object's current verification job as a worker would, after-commit work included."""

    def go(obj) -> str:
        with django_capture_on_commit_callbacks(execute=True):
            outcome = run_job(job_of(obj).pk)
        obj.refresh_from_db()
        return outcome

    return go


def workers_die_on(obj) -> Job:
    """Every worker that takes the object's job dies (its lease runs out), until the job gives up."""
    job = job_of(obj)
    for _ in range(job.max_attempts):
        assert jobs.job_claim(job.pk) is not None
        Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert run_job(job.pk) == "skipped"  # the next claim gives up instead
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.error.startswith("gave up after")
    return job


def register(actor, data: bytes | None = None) -> ModelVersion:
    return services.version_create(actor=actor, model_name="churn", artifact=upload(data or artifacts.onnx_bytes()))


def pending_with_failed_job(actor) -> ModelVersion:
    """Version 1 of churn, pending, its job given up after its workers died."""
    version = register(actor)
    workers_die_on(version)
    return version


def requested(obj) -> list[AuditEvent]:
    """The retries granted on ``obj``, oldest first (refusals are audited too, as denied)."""
    events = AuditEvent.objects.filter(
        action__endswith=".verification_requested", target_id=str(obj.pk), outcome="success"
    )
    return list(events.order_by("id"))


# ---------------------------------------------------------------------------------------------
# A failed job, retried, verifies the object


@pytest.mark.django_db
def test_a_version_whose_storage_was_down_is_verified_again_once_it_is_back(
    contributor, contributor_principal, model, api_client_for, storage_down, run, audit_mark
):
    # given: an upload whose verification ran while the storage did not answer
    version = register(contributor_principal)
    with storage_down():
        assert run(version) == "failed"
    failed = job_of(version)
    assert version.status == "pending_verification"
    assert failed.message == "failed unexpectedly" and "Could not connect to the endpoint" in failed.error
    client = api_client_for(contributor)
    mark = audit_mark()
    # when: the storage is back and the contributor asks again
    response = client.post(VERSION_VERIFY)
    # then: 202 with the version and its new, queued job
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "pending_verification"
    job = job_of(version)
    assert job.pk != failed.pk and (job.kind, job.status, job.params) == (failed.kind, "queued", failed.params)
    assert body["verification"]["id"] == str(job.public_id) and body["verification"]["status"] == "queued"
    (event,) = mark.new()
    assert (event.action, event.outcome, event.actor_id) == (
        "model_version.verification_requested",
        "success",
        str(contributor.pk),
    )
    assert event.before == {"verification_job": failed.pk, "job_status": "failed"}
    assert event.after == {"verification_job": job.pk, "job_status": "queued"}
    assert event.reason == failed.error and event.artifact_sha256 == version.sha256
    assert (event.related_type, event.related_id) == ("model", str(model.pk))
    # and the new job, run with the storage back, makes the version ready
    assert run(version) == "succeeded"
    assert version.status == "ready"
    assert Job.objects.get(pk=failed.pk).status == "failed"  # the old job stays on record as it was


@pytest.mark.django_db
def test_a_referenced_dataset_on_an_unreachable_server_can_be_retried_as_often_as_it_fails(
    contributor, contributor_principal, team, api_client_for, storage_down, run
):
    # given: a dataset referenced in a bucket whose server does not answer
    with storage_down():
        dataset = services.dataset_create(
            actor=contributor_principal, name="lake", owner_team=team, uri=f"s3://{BUCKET}/lake/part.csv"
        )
        assert run(dataset) == "failed"
        first = job_of(dataset)
        client = api_client_for(contributor)
        # when: retried while the server is still down
        response = client.post(f"/api/v1/datasets/{dataset.pk}/verify/")
        assert response.status_code == 202, response.content
        assert response.json()["verification"]["status"] == "queued"
        assert run(dataset) == "failed"
        # then: it fails again, stays pending, and can be retried again
        second = job_of(dataset)
        assert second.pk != first.pk and dataset.status == "pending_verification"
        assert client.post(f"/api/v1/datasets/{dataset.pk}/verify/").status_code == 202
    events = requested(dataset)
    assert [e.action for e in events] == ["dataset.verification_requested"] * 2
    assert [e.before["verification_job"] for e in events] == [first.pk, second.pk]
    assert "Could not connect to the endpoint" in events[0].reason
    assert (events[0].related_type, events[0].related_id) == ("team", str(team.pk))


@pytest.mark.django_db
def test_a_predictions_only_version_is_settled_when_its_datasets_retry_succeeds(
    contributor_principal, team, model, storage_down, run
):
    # given: an evaluation dataset whose verification failed, and a version waiting on it
    dataset = services.dataset_create(
        actor=contributor_principal,
        name="scored",
        owner_team=team,
        file=upload(artifacts.parquet_bytes()),
        schema=artifacts.schema(),
    )
    with storage_down():
        assert run(dataset) == "failed"
    version = services.version_create(
        actor=contributor_principal, model_name="churn", format="predictions_only", evaluation_dataset_id=dataset.pk
    )
    assert run(version) == "succeeded" and version.status == "pending_verification"
    # when: the version is retried, it points at the dataset; the dataset is retried and verified
    with pytest.raises(InvalidTransition, match=f"waits for its evaluation dataset {dataset.pk}"):
        services.version_reverify(actor=contributor_principal, model_name="churn", number=version.number)
    services.dataset_reverify(actor=contributor_principal, dataset_id=dataset.pk)
    assert run(dataset) == "succeeded"
    # then
    version.refresh_from_db()
    assert dataset.status == "ready" and version.status == "ready"


@pytest.mark.django_db
def test_a_job_whose_workers_all_died_can_be_retried(contributor_principal, model, run, audit_mark):
    # given
    version = pending_with_failed_job(contributor_principal)
    gave_up = job_of(version)
    mark = audit_mark()
    # when
    returned = services.version_reverify(actor=contributor_principal, model_name="churn", number=1)
    # then
    assert returned.verification_job_id == job_of(version).pk != gave_up.pk
    assert mark.actions() == ["model_version.verification_requested"]
    assert mark.new()[0].reason == gave_up.error
    assert run(version) == "succeeded" and version.status == "ready"


@pytest.mark.django_db
def test_a_version_that_lost_its_job_row_can_be_retried(contributor_principal, model):
    version = register(contributor_principal)
    Job.objects.filter(pk=version.verification_job_id).delete()  # the job table was pruned
    services.version_reverify(actor=contributor_principal, model_name="churn", number=1)
    (event,) = requested(version)
    assert event.before == {"verification_job": None, "job_status": None}
    assert job_of(version).status == "queued"


# ---------------------------------------------------------------------------------------------
# Who may retry: the triad


@pytest.mark.django_db
def test_retrying_a_version_needs_authentication(anon_client, contributor_principal, model):
    version = pending_with_failed_job(contributor_principal)
    response = anon_client.post(VERSION_VERIFY)
    assert response.status_code == 401
    assert job_of(version).status == "failed" and requested(version) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "who, expected",
    [("viewer", 403), ("no role", 404), ("contributor of another team", 404)],
)
def test_only_those_who_may_register_versions_retry_one(
    make_user, api_client_for, contributor_principal, model, other_team, audit_mark, who, expected
):
    # given
    version = pending_with_failed_job(contributor_principal)
    user = {
        "viewer": lambda: make_user("viewer", team=model.owner_team),
        "no role": lambda: make_user(),
        "contributor of another team": lambda: make_user("contributor", team=other_team),
    }[who]()
    mark = audit_mark()
    # when
    response = api_client_for(user).post(VERSION_VERIFY)
    # then: refused, audited as denied, and no new job
    assert response.status_code == expected, response.content
    assert job_of(version).status == "failed"
    denied = mark.new(outcome="denied")
    assert [e.actor_id for e in denied] == [str(user.pk)]
    if expected == 403:
        assert denied[0].action == "model_version.verification_requested"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "who, expected",
    [("anonymous", 401), ("viewer", 403), ("no role", 404), ("contributor of another team", 404)],
)
def test_only_those_who_may_register_datasets_retry_one(
    make_user, api_client_for, anon_client, contributor_principal, team, other_team, who, expected
):
    dataset = services.dataset_create(
        actor=contributor_principal, name="applications", owner_team=team, file=upload(artifacts.csv_bytes())
    )
    workers_die_on(dataset)
    client = {
        "anonymous": lambda: anon_client,
        "viewer": lambda: api_client_for(make_user("viewer", team=team)),
        "no role": lambda: api_client_for(make_user()),
        "contributor of another team": lambda: api_client_for(make_user("contributor", team=other_team)),
    }[who]()
    assert client.post(f"/api/v1/datasets/{dataset.pk}/verify/").status_code == expected
    assert job_of(dataset).status == "failed" and requested(dataset) == []


@pytest.mark.django_db
def test_retrying_what_does_not_exist_is_404(contributor, api_client_for, model):
    client = api_client_for(contributor)
    assert client.post("/api/v1/models/churn/versions/9/verify/").status_code == 404
    assert client.post("/api/v1/datasets/999999/verify/").status_code == 404


# ---------------------------------------------------------------------------------------------
# When there is nothing to retry: 409 saying why


@pytest.mark.django_db
def test_a_queued_or_running_verification_is_not_retried(contributor, contributor_principal, model, api_client_for):
    # given: a fresh registration, its job queued
    version = register(contributor_principal)
    queued = job_of(version)
    client = api_client_for(contributor)
    # when / then
    response = client.post(VERSION_VERIFY)
    assert response.status_code == 409
    assert response.json()["code"] == "invalid_transition"
    assert response.json()["detail"] == (
        f"Verification of version 1 of churn is already queued (job {queued.public_id}); wait for it."
    )
    # given: a worker has it, 40% done
    claim = jobs.job_claim(queued.pk)
    jobs.job_report(claim, progress=40, message="loading")
    # when / then
    response = client.post(VERSION_VERIFY)
    assert response.status_code == 409
    assert response.json()["detail"] == (
        f"Verification of version 1 of churn is still running (job {queued.public_id}, 40%); wait for it."
    )
    assert job_of(version).pk == queued.pk and requested(version) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "make, status",
    [(artifacts.onnx_bytes, "ready"), (artifacts.corrupt_onnx_bytes, "invalid")],
    ids=["ready", "invalid"],
)
def test_a_decided_version_is_not_verified_again(
    contributor, contributor_principal, model, api_client_for, run, make, status
):
    version = register(contributor_principal, make())
    run(version)
    assert version.status == status
    response = api_client_for(contributor).post(VERSION_VERIFY)
    assert response.status_code == 409
    assert response.json()["detail"] == f"Version 1 of churn is {status}; nothing to verify."
    assert requested(version) == []


@pytest.mark.django_db
def test_a_verified_dataset_is_not_verified_again(contributor, contributor_principal, team, api_client_for, run):
    dataset = services.dataset_create(
        actor=contributor_principal, name="applications", owner_team=team, file=upload(artifacts.csv_bytes())
    )
    run(dataset)
    response = api_client_for(contributor).post(f"/api/v1/datasets/{dataset.pk}/verify/")
    assert response.status_code == 409
    assert response.json()["detail"] == f"Dataset {dataset.pk} (applications) is ready; nothing to verify."


# ---------------------------------------------------------------------------------------------
# Two retries at once


@pytest.mark.django_db(transaction=True)
def test_two_retries_at_once_create_one_job(contributor_principal, model):
    if connection.vendor != "postgresql":
        pytest.skip(
            "SQLite lets one writer in at a time, so retries cannot race; "
            "this runs on PostgreSQL (DATABASE_URL=postgres://..., as .ci/run does)"
        )
    # given
    version = pending_with_failed_job(contributor_principal)
    start = threading.Barrier(2)
    done: list[ModelVersion] = []
    errors: list[BaseException] = []

    def retry() -> None:
        try:
            start.wait()
            done.append(services.version_reverify(actor=contributor_principal, model_name="churn", number=1))
        except BaseException as exc:  # collected for the assertions
            errors.append(exc)
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=retry) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then: one new job; the other retry found it queued
    assert len(done) == 1, errors
    assert len(errors) == 1 and isinstance(errors[0], InvalidTransition), errors
    assert "already queued" in errors[0].detail
    new_job = job_of(version)
    assert new_job.pk == done[0].verification_job_id
    assert Job.objects.filter(kind=services.VERIFY_VERSION, target_id=str(version.pk)).count() == 2
    assert len(requested(version)) == 1


# ---------------------------------------------------------------------------------------------
# The dashboard


@pytest.mark.django_db
def test_the_version_page_shows_the_error_and_a_retry_button_to_contributors(
    client, contributor, contributor_principal, model
):
    version = pending_with_failed_job(contributor_principal)
    client.force_login(contributor)
    page = client.get("/models/churn/versions/1/").content.decode()
    assert "Verification did not finish." in page
    assert job_of(version).error in page
    assert 'action="/models/churn/versions/1/verify/"' in page and "Retry verification" in page
    assert "csrfmiddlewaretoken" in page


@pytest.mark.django_db
def test_a_viewer_sees_the_error_but_no_retry_button(client, make_user, contributor_principal, model):
    version = pending_with_failed_job(contributor_principal)
    client.force_login(make_user("viewer", team=model.owner_team))
    page = client.get("/models/churn/versions/1/").content.decode()
    assert job_of(version).error in page
    assert "Retry verification" not in page


@pytest.mark.django_db
def test_a_version_still_being_verified_offers_no_retry(client, contributor, contributor_principal, model):
    register(contributor_principal)
    client.force_login(contributor)
    page = client.get("/models/churn/versions/1/").content.decode()
    assert "Verification pending." in page and "Retry verification" not in page


@pytest.mark.django_db
def test_retry_verification_from_the_version_page(client, contributor, contributor_principal, model, audit_mark):
    # given
    version = pending_with_failed_job(contributor_principal)
    failed = job_of(version)
    client.force_login(contributor)
    mark = audit_mark()
    # when
    response = client.post("/models/churn/versions/1/verify/", follow=True)
    # then: back on the page, with a message and the new job's progress instead of the error
    assert response.redirect_chain == [("/models/churn/versions/1/", 302)]
    page = response.content.decode()
    assert "Verification of churn v1 requested again" in page
    assert "Verification pending." in page and "Verification did not finish." not in page
    assert job_of(version).pk != failed.pk
    assert [(e.action, e.source) for e in mark.new()] == [("model_version.verification_requested", "web")]
    # when: pressed again (a second tab), the refusal is shown the same way
    page = client.post("/models/churn/versions/1/verify/", follow=True).content.decode()
    assert "already queued" in page and 'class="alert alert-error"' in page
    assert len(requested(version)) == 1


@pytest.mark.django_db
def test_a_viewer_posting_a_retry_is_refused_and_audited(client, make_user, contributor_principal, model, audit_mark):
    version = pending_with_failed_job(contributor_principal)
    client.force_login(make_user("viewer", team=model.owner_team))
    mark = audit_mark()
    assert client.post("/models/churn/versions/1/verify/").status_code == 403
    assert [(e.action, e.outcome) for e in mark.new()] == [("model_version.verification_requested", "denied")]
    assert job_of(version).status == "failed"


@pytest.mark.django_db
def test_the_retry_form_needs_sign_in_post_and_its_csrf_token(contributor, contributor_principal, model):
    version = pending_with_failed_job(contributor_principal)
    anonymous = Client()
    assert anonymous.post("/models/churn/versions/1/verify/")["Location"].startswith("/login/")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(contributor)
    assert strict.get("/models/churn/versions/1/verify/").status_code == 405
    assert strict.post("/models/churn/versions/1/verify/").status_code == 403
    assert job_of(version).status == "failed" and requested(version) == []


@pytest.mark.django_db
def test_retry_verification_from_the_dataset_page(client, contributor, contributor_principal, team):
    # given
    dataset = services.dataset_create(
        actor=contributor_principal, name="applications", owner_team=team, file=upload(artifacts.csv_bytes())
    )
    failed = workers_die_on(dataset)
    client.force_login(contributor)
    page = client.get(f"/datasets/{dataset.pk}/").content.decode()
    assert failed.error in page and f'action="/datasets/{dataset.pk}/verify/"' in page
    # when
    response = client.post(f"/datasets/{dataset.pk}/verify/", follow=True)
    # then
    assert response.redirect_chain == [(f"/datasets/{dataset.pk}/", 302)]
    assert "Verification of “applications” requested again" in response.content.decode()
    assert Dataset.objects.get(pk=dataset.pk).verification_job_id != failed.pk
    assert [e.action for e in requested(dataset)] == ["dataset.verification_requested"]
