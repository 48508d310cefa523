"""Job rows: enqueue, claim, report, finish and sweep (apps/jobs/services.py), in one process.

The same guarantees across real worker processes are in tests/worker/test_processes.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.audit import context
from apps.audit.models import AuditEvent
from apps.jobs import services as jobs
from apps.jobs.models import Job, JobStatus

pytestmark = pytest.mark.django_db


def expire_lease(job: Job, *, ago: int = 60) -> None:
    """Given: the worker holding the job stopped renewing its lease ``ago`` seconds ago."""
    Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=ago))


def job_events(job: Job) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(target_type="job", target_id=str(job.pk)).order_by("id"))


def test_enqueue_remembers_the_request_and_sends_the_task_after_commit(
    make_user, principal_of, django_capture_on_commit_callbacks
):
    # given a request by a user
    user = make_user()
    context.update(request_id="req-enqueue-1", principal=principal_of(user))

    # when a service enqueues a job
    with django_capture_on_commit_callbacks() as callbacks:
        job = jobs.job_enqueue(kind="registry.verify_version", target=("model_version", "7", "churn v7"))

    # then the row is queued with who asked and in which request, and one task is sent on commit
    job.refresh_from_db()
    assert (job.status, job.attempts, job.progress) == (JobStatus.QUEUED, 0, 0)
    assert (job.target_type, job.target_id) == ("model_version", "7")
    assert job.request_id == "req-enqueue-1"
    assert job.principal["kind"] == "user" and job.principal["id"] == user.pk
    assert len(callbacks) == 1


def test_a_claimed_job_cannot_be_claimed_again_while_its_lease_is_live(audit_mark):
    # given a queued job
    job = jobs.job_enqueue(kind="tests.noop")
    mark = audit_mark()

    # when one worker claims it and a duplicate message tries again
    first = jobs.job_claim(job.pk)
    second = jobs.job_claim(job.pk)

    # then only the first holds it, and one start is on the trail
    assert first is not None and second is None
    job.refresh_from_db()
    assert (job.status, job.attempts, job.lease_token) == (JobStatus.RUNNING, 1, first.token)
    assert job.lease_expires_at > timezone.now()
    assert mark.actions() == ["job.started"]


def test_a_finished_job_is_not_claimed_again(audit_mark):
    # given a job that succeeded
    job = jobs.job_enqueue(kind="tests.noop")
    claim = jobs.job_claim(job.pk)
    assert jobs.job_finish(claim, ok=True, result={"n": 1})
    mark = audit_mark()

    # when its message arrives again, then nothing happens
    assert jobs.job_claim(job.pk) is None
    job.refresh_from_db()
    assert (job.status, job.attempts, job.result, job.progress) == (JobStatus.SUCCEEDED, 1, {"n": 1}, 100)
    assert mark.actions() == []


def test_reporting_progress_renews_the_lease():
    # given a claimed job whose lease is about to run out
    job = jobs.job_enqueue(kind="tests.noop")
    claim = jobs.job_claim(job.pk)
    Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() + timedelta(seconds=1))

    # when the worker reports progress
    assert jobs.job_report(claim, progress=40, message="hashing")

    # then the lease is extended and the progress is visible
    job.refresh_from_db()
    assert (job.progress, job.message) == (40, "hashing")
    assert job.lease_expires_at > timezone.now() + timedelta(seconds=30)


def test_after_a_takeover_the_old_worker_loses_its_lease_and_its_finish_is_ignored(audit_mark):
    # given a job whose first worker went silent past its lease, and a second worker that took it over
    job = jobs.job_enqueue(kind="tests.noop")
    old = jobs.job_claim(job.pk)
    expire_lease(job)
    new = jobs.job_claim(job.pk)
    assert new is not None and new.token != old.token
    mark = audit_mark()

    # when the old worker wakes up, reports and finishes
    reported = jobs.job_report(old, progress=90)
    finished = jobs.job_finish(old, ok=False, error="stale result")

    # then both are refused, the row is untouched and nothing is audited
    assert (reported, finished) == (False, False)
    job.refresh_from_db()
    assert (job.status, job.attempts, job.lease_token, job.error) == (JobStatus.RUNNING, 2, new.token, "")
    assert mark.actions() == []

    # and the new worker's finish counts
    assert jobs.job_finish(new, ok=True)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert mark.actions() == ["job.succeeded"]


def test_a_failed_run_is_recorded_with_its_reason(audit_mark):
    job = jobs.job_enqueue(kind="tests.noop")
    claim = jobs.job_claim(job.pk)
    mark = audit_mark()

    reason = "artifact does not load: bad ONNX header"

    assert jobs.job_finish(claim, ok=False, error=reason, message="invalid")

    job.refresh_from_db()
    assert (job.status, job.message, job.error) == (JobStatus.FAILED, "invalid", reason)
    [event] = mark.new()
    assert (event.action, event.outcome, event.reason) == ("job.failed", "failed", reason)


def test_sweep_leaves_a_job_under_a_live_lease_alone(audit_mark):
    # given a running job whose worker keeps renewing its lease
    job = jobs.job_enqueue(kind="tests.noop")
    claim = jobs.job_claim(job.pk)
    jobs.job_report(claim, progress=10)
    mark = audit_mark()

    # when the sweeper runs
    swept = jobs.job_sweep()

    # then it does nothing
    assert swept == []
    job.refresh_from_db()
    assert (job.status, job.lease_token, job.attempts) == (JobStatus.RUNNING, claim.token, 1)
    assert mark.actions() == []


def test_sweep_requeues_a_job_whose_lease_expired(audit_mark):
    # given a running job whose worker died
    job = jobs.job_enqueue(kind="tests.noop")
    claim = jobs.job_claim(job.pk)
    expire_lease(job)
    mark = audit_mark()

    # when the sweeper runs
    swept = jobs.job_sweep()

    # then the job is queued again (its task is re-sent after commit), and the trail says why
    assert swept == [job.pk]
    job.refresh_from_db()
    assert (job.status, job.lease_token, job.lease_expires_at) == (JobStatus.QUEUED, "", None)
    [event] = mark.new()
    assert event.action == "job.requeued"
    assert event.before == {"status": "running", "worker": claim.job.worker, "attempt": 1}
    assert event.after == {"status": "queued"}
    assert "lease expired" in event.reason

    # and the next worker's claim is attempt 2
    assert jobs.job_claim(job.pk) is not None
    job.refresh_from_db()
    assert (job.status, job.attempts) == (JobStatus.RUNNING, 2)


def test_sweep_resends_a_job_nobody_picked_up_without_auditing_it(settings, audit_mark):
    # given one job queued long ago (its message was lost) and one queued just now
    settings.ASSAY_JOB_QUEUED_GRACE_SECONDS = 60
    lost = jobs.job_enqueue(kind="tests.noop")
    Job.objects.filter(pk=lost.pk).update(dispatched_at=timezone.now() - timedelta(minutes=5))
    fresh = jobs.job_enqueue(kind="tests.noop")
    mark = audit_mark()

    # when the sweeper runs
    swept = jobs.job_sweep()

    # then only the old one is sent again; its state did not change, so nothing is audited
    assert swept == [lost.pk]
    lost.refresh_from_db()
    assert lost.status == JobStatus.QUEUED
    assert lost.dispatched_at > timezone.now() - timedelta(seconds=30)
    assert fresh.pk not in swept
    assert mark.actions() == []


def test_a_job_that_keeps_losing_its_worker_fails_after_max_attempts(audit_mark):
    # given a job whose workers died on each of its 2 allowed attempts
    job = jobs.job_enqueue(kind="tests.noop", max_attempts=2)
    for _ in range(2):
        assert jobs.job_claim(job.pk) is not None
        expire_lease(job)
    mark = audit_mark()

    # when the sweeper finds it again
    swept = jobs.job_sweep()

    # then it gives up: the job fails with a reason, and the trail records the failure
    assert swept == []
    job.refresh_from_db()
    assert (job.status, job.attempts, job.lease_token) == (JobStatus.FAILED, 2, "")
    assert "gave up after 2 attempt(s)" in job.error
    [event] = mark.new()
    assert (event.action, event.outcome) == ("job.failed", "failed")
    assert event.before == {"status": "running", "attempts": 2}
    assert jobs.job_claim(job.pk) is None


def test_a_claim_past_max_attempts_fails_the_job_instead_of_running_it(audit_mark):
    # given a job whose last allowed attempt expired, redelivered by the broker before any sweep
    job = jobs.job_enqueue(kind="tests.noop", max_attempts=1)
    jobs.job_claim(job.pk)
    expire_lease(job)
    mark = audit_mark()

    # when a worker receives it
    claim = jobs.job_claim(job.pk)

    # then it is not run again but failed, with an audit event
    assert claim is None
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert mark.actions() == ["job.failed"]


# ---------------------------------------------------------------------------------------------
# The table as the queue: a woken worker takes the oldest queued job nobody else holds.


def test_claim_next_takes_the_oldest_queued_job_and_acts_for_its_request(make_user, principal_of, audit_mark):
    # given a running job, a finished one, and two queued ones enqueued by two requests
    user = make_user()
    running = jobs.job_enqueue(kind="tests.noop")
    jobs.job_claim(running.pk)
    done = jobs.job_enqueue(kind="tests.noop")
    jobs.job_finish(jobs.job_claim(done.pk), ok=True)
    context.update(request_id="req-older", principal=principal_of(user))
    older = jobs.job_enqueue(kind="tests.noop")
    context.update(request_id="req-newer")
    newer = jobs.job_enqueue(kind="tests.noop")
    context.update(request_id="req-worker", principal=None)
    mark = audit_mark()

    # when a woken worker claims the next job, twice, then once more
    first = jobs.job_claim_next()
    first_context = context.current()
    second = jobs.job_claim_next()
    third = jobs.job_claim_next()

    # then it took the queued jobs oldest first, and nothing once the queue was empty
    assert (first.job.pk, second.job.pk, third) == (older.pk, newer.pk, None)
    older.refresh_from_db()
    assert (older.status, older.attempts, older.lease_token) == (JobStatus.RUNNING, 1, first.token)
    # and it acted for the request that enqueued each job
    assert first_context.request_id == "req-older" and first_context.principal == principal_of(user)
    events = mark.new()
    assert [(e.action, e.target_id, e.request_id) for e in events] == [
        ("job.started", str(older.pk), "req-older"),
        ("job.started", str(newer.pk), "req-newer"),
    ]
    assert events[0].actor_id == str(user.pk)


def test_claim_next_fails_a_queued_job_past_its_attempts_and_takes_the_next(audit_mark):
    # given a queued job that has used up its attempts, and a fresh one behind it
    spent = jobs.job_enqueue(kind="tests.noop", max_attempts=2)
    Job.objects.filter(pk=spent.pk).update(attempts=2)
    fresh = jobs.job_enqueue(kind="tests.noop")
    mark = audit_mark()

    # when a worker claims the next job
    claim = jobs.job_claim_next()

    # then the spent one is failed with a reason and the fresh one is running
    assert claim.job.pk == fresh.pk
    spent.refresh_from_db()
    assert spent.status == JobStatus.FAILED and "gave up after 2 attempt(s)" in spent.error
    assert mark.actions() == ["job.failed", "job.started"]


def test_enqueue_wakes_the_workers_through_the_broker_after_commit_and_not_before(
    django_capture_on_commit_callbacks,
):
    # given this process's doorbell with nothing pending (an earlier ring has had its interval)
    import time

    time.sleep(0.3)
    sent_before = jobs.doorbell.sent

    # when a job is enqueued in a transaction that commits
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        jobs.job_enqueue(kind="tests.noop")
        time.sleep(0.2)
        assert jobs.doorbell.sent == sent_before  # nothing is sent before the commit

    # then one wake-up is sent to the broker after it
    deadline = time.monotonic() + 5
    while jobs.doorbell.sent == sent_before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(callbacks) == 1
    assert jobs.doorbell.sent == sent_before + 1


@pytest.mark.django_db(transaction=True)
def test_claim_next_skips_a_job_another_worker_is_claiming(settings):
    # given two queued jobs, the older one locked by another worker's open claim (PostgreSQL: row locks)
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL (on SQLite a claim holds the whole database's write lock)")
    import psycopg

    older = jobs.job_enqueue(kind="tests.noop")
    newer = jobs.job_enqueue(kind="tests.noop")
    s = connection.settings_dict
    other = psycopg.connect(
        host=s["HOST"], port=s["PORT"] or None, user=s["USER"], password=s["PASSWORD"] or None, dbname=s["NAME"]
    )
    try:
        other.execute("SELECT id FROM jobs_job WHERE id = %s FOR UPDATE", [older.pk])

        # when this worker claims the next job meanwhile
        claim = jobs.job_claim_next()

        # then it took the newer job without waiting, and left the locked one queued for its holder
        assert claim.job.pk == newer.pk
        assert Job.objects.get(pk=older.pk).status == JobStatus.QUEUED
    finally:
        other.rollback()
        other.close()
