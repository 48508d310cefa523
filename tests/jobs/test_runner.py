"""worker.runner.run_job in this process: handlers, outcomes, progress and the context of the events."""

from __future__ import annotations

import pytest

from apps.audit import context
from apps.audit.models import AuditEvent
from apps.jobs import services as jobs
from apps.jobs.models import Job, JobStatus
from worker.runner import JobFailed, handles, run_job

pytestmark = pytest.mark.django_db


@handles("tests.count")
def _count(job, report):
    for i in range(1, 4):
        report(i * 25, f"step {i}")
    return {"counted": 3}


@handles("tests.refuse")
def _refuse(job, report):
    raise JobFailed("the artifact is not a valid ONNX model")


@handles("tests.crash")
def _crash(job, report):
    raise ZeroDivisionError("division by zero")


@handles("tests.taken_over")
def _taken_over(job, report):
    # another worker takes the job over while this one is silent
    Job.objects.filter(pk=job.pk).update(lease_token="someone-else")
    report(50, "still going")
    return {"never": "recorded"}


def enqueue(kind: str) -> Job:
    return jobs.job_enqueue(kind=kind)


def test_a_job_runs_to_success_with_progress_and_result(audit_mark):
    job = enqueue("tests.count")
    mark = audit_mark()

    assert run_job(job.pk) == "succeeded"

    job.refresh_from_db()
    assert (job.status, job.progress, job.result, job.attempts) == (JobStatus.SUCCEEDED, 100, {"counted": 3}, 1)
    assert mark.actions() == ["job.started", "job.succeeded"]


def test_running_a_finished_job_again_does_nothing(audit_mark):
    job = enqueue("tests.count")
    run_job(job.pk)
    mark = audit_mark()

    assert run_job(job.pk) == "skipped"
    assert run_job(999_999_999) == "skipped"
    assert mark.actions() == []


def test_a_refusal_fails_the_job_with_its_message():
    job = enqueue("tests.refuse")

    assert run_job(job.pk) == "failed"

    job.refresh_from_db()
    assert (job.status, job.message) == (JobStatus.FAILED, "the artifact is not a valid ONNX model")


def test_an_unexpected_error_fails_the_job_with_the_exception():
    job = enqueue("tests.crash")

    assert run_job(job.pk) == "failed"

    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error == "ZeroDivisionError: division by zero"
    assert job.message == "failed unexpectedly"


def test_an_unknown_kind_fails_the_job():
    job = enqueue("tests.no_such_kind")

    assert run_job(job.pk) == "failed"

    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "no handler" in job.error


def test_a_worker_that_lost_its_lease_stops_without_finishing(audit_mark):
    job = enqueue("tests.taken_over")
    mark = audit_mark()

    assert run_job(job.pk) == "lease_lost"

    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING  # the new holder finishes it
    assert job.result is None
    assert mark.actions() == ["job.started"]


def test_the_run_acts_for_the_request_that_enqueued_the_job(make_user, principal_of, audit_mark):
    # given a job enqueued by a user in request "req-origin"
    user = make_user()
    context.update(request_id="req-origin", principal=principal_of(user))
    job = enqueue("tests.count")
    # and a worker whose own context is something else (e.g. the sweeper's re-sent message)
    context.reset()
    context.update(request_id="req-sweeper", source="worker")
    mark = audit_mark()

    run_job(job.pk)

    # then the job's events name the original request and user
    events = mark.new()
    assert {(e.request_id, e.actor_type, e.actor_id) for e in events} == {("req-origin", "user", str(user.pk))}
    # and the worker's own context is restored afterwards
    assert context.current().request_id == "req-sweeper"
    assert AuditEvent.objects.filter(request_id="req-sweeper").count() == 0


def test_in_eager_mode_a_job_runs_as_soon_as_its_transaction_commits(settings, django_capture_on_commit_callbacks):
    # given development mode without a worker (ASSAY_CELERY_EAGER=1)
    settings.CELERY_TASK_ALWAYS_EAGER = True

    # when a job is enqueued and the transaction commits
    with django_capture_on_commit_callbacks(execute=True):
        job = enqueue("tests.count")

    # then it has already run
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
