"""Worker heartbeats and what reads them: /api/v1/health/, the admins' banner, the evidence run page.

The rows here are written by the heartbeat service as a worker writes them; tests/worker/test_standalone.py
does the same with real worker processes.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.core.context_processors import assay as assay_context
from apps.jobs import selectors
from apps.jobs import services as jobs
from apps.jobs.models import Job, WorkerHeartbeat

pytestmark = pytest.mark.django_db

PROBLEM_JSON = "application/problem+json"


def beat(name: str = "host:100", *, ago: float = 0.0) -> None:
    """A worker's heartbeat, written ``ago`` seconds in the past."""
    jobs.worker_heartbeat(name=name, kind="database", beat=False, started_at=timezone.now())
    if ago:
        WorkerHeartbeat.objects.filter(name=name).update(last_seen=timezone.now() - timedelta(seconds=ago))


def test_health_is_degraded_but_200_when_no_worker_was_ever_seen(anon_client):
    # when a load balancer asks and no worker has ever run
    response = anon_client.get("/api/v1/health/")

    # then the web can serve (200) but says the background work is not being done, and why
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["reasons"] == ["no worker has been seen in the last 30 s"]
    assert body["workers"]["ok"] is False
    assert body["workers"]["workers_alive"] == 0
    assert body["database"]["ok"] is True


def test_strict_health_answers_503_when_degraded_for_monitors_that_read_only_the_code(anon_client):
    response = anon_client.get("/api/v1/health/?strict=true")

    assert response.status_code == 503
    assert response["Content-Type"] == PROBLEM_JSON
    body = response.json()
    assert body["code"] == "degraded"
    assert body["detail"] == "No worker has been seen in the last 30 s."
    assert body["workers"]["workers_alive"] == 0


def test_health_is_ok_with_a_live_worker_and_degraded_once_its_heartbeat_is_30_s_old(anon_client):
    # given a worker that wrote its heartbeat just now
    beat("host:200")
    assert anon_client.get("/api/v1/health/").json()["status"] == "ok"
    assert anon_client.get("/api/v1/health/?strict=true").status_code == 200

    # when its last heartbeat is 31 s old (it died)
    beat("host:200", ago=31)

    # then health is degraded and says when the last one was seen
    body = anon_client.get("/api/v1/health/").json()
    assert body["status"] == "degraded"
    assert body["reasons"] == ["no worker has been seen in the last 30 s (the last one 31 s ago)"]


def test_health_is_degraded_when_the_oldest_queued_job_waited_too_long(anon_client, settings):
    # given a live worker, and a job queued 11 minutes ago that nobody took
    settings.ASSAY_HEALTH_MAX_QUEUE_AGE_SECONDS = 600
    beat()
    job = jobs.job_enqueue(kind="tests.noop")
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(minutes=11))

    # when health is asked
    body = anon_client.get("/api/v1/health/").json()

    # then it is degraded by the queue's age alone
    assert body["status"] == "degraded"
    assert body["reasons"] == ["the oldest queued job has waited 660 s (more than 600 s)"]
    assert body["workers"]["workers_alive"] == 1
    assert body["workers"]["oldest_queued_seconds"] >= 660


def test_with_eager_jobs_no_worker_is_needed(anon_client, settings):
    # given development's eager mode (jobs run in the process that enqueued them)
    settings.CELERY_TASK_ALWAYS_EAGER = True

    # then health does not ask for a worker
    body = anon_client.get("/api/v1/health/").json()
    assert body["status"] == "ok"
    assert body["workers"] == {"ok": True, "eager": True}


def test_the_health_read_writes_nothing(anon_client):
    beat(ago=40)
    jobs.job_enqueue(kind="tests.noop")

    with CaptureQueriesContext(connection) as queries:
        anon_client.get("/api/v1/health/")

    statements = [q["sql"].lstrip().split(None, 1)[0].upper() for q in queries.captured_queries]
    assert statements and set(statements) <= {"SELECT"}, statements


def test_a_dead_workers_row_ages_out_and_a_stopped_worker_removes_its_own(settings):
    # given a worker not seen for longer than ASSAY_WORKER_FORGET_SECONDS, and one that stops cleanly
    settings.ASSAY_WORKER_FORGET_SECONDS = 3600
    beat("host:dead", ago=3601)
    beat("host:stopping")

    # when a live worker beats, and the other stops
    beat("host:live")
    jobs.worker_stopped(name="host:stopping")

    # then only the live worker is left
    assert list(WorkerHeartbeat.objects.values_list("name", flat=True)) == ["host:live"]


def test_a_heartbeat_updates_one_row_per_worker():
    beat("host:300")
    first = WorkerHeartbeat.objects.get(name="host:300").last_seen
    beat("host:300")

    assert WorkerHeartbeat.objects.filter(name="host:300").count() == 1
    assert WorkerHeartbeat.objects.get(name="host:300").last_seen >= first


def test_worker_health_takes_two_queries(django_assert_num_queries):
    beat()
    with django_assert_num_queries(2):
        health = selectors.worker_health()
    assert health.ok


def test_admins_see_the_degraded_banner_and_others_do_not(client, make_user):
    # given no worker alive
    admin = make_user("admin")
    viewer = make_user("viewer")

    # when an admin opens the dashboard
    client.force_login(admin)
    page = client.get("/", follow=True).content.decode()

    # then a banner says background work is not being done, and why
    assert 'id="degraded-banner"' in page
    assert "No worker has been seen in the last 30 s." in page

    # and someone who is not an admin does not see it
    client.force_login(viewer)
    assert 'id="degraded-banner"' not in client.get("/", follow=True).content.decode()

    # and with a worker alive, the admin does not see it either
    beat()
    client.force_login(admin)
    assert 'id="degraded-banner"' not in client.get("/", follow=True).content.decode()


def test_the_banner_costs_an_admin_two_queries(rf, make_user, django_assert_num_queries):
    # given the context an admin's page gets, with the banner's checks counted apart from the navigation's
    admin = make_user("admin")
    request = rf.get("/")
    request.user = admin
    with CaptureQueriesContext(connection) as with_banner:
        context = assay_context(request)
    assert context["assay_degraded"]

    viewer = make_user("viewer")
    request.user = viewer
    with CaptureQueriesContext(connection) as without_banner:
        assert assay_context(request)["assay_degraded"] == []

    # then the banner adds exactly two queries (heartbeats, oldest queued job)
    banner = [q["sql"] for q in with_banner.captured_queries if "jobs_" in q["sql"]]
    assert len(banner) == 2, banner
    assert not [q for q in without_banner.captured_queries if "jobs_" in q["sql"]]


def test_strict_takes_true_or_false_and_nothing_else(anon_client):
    # given no worker (degraded)
    # when a monitor asks with a value the schema does not allow
    response = anon_client.get("/api/v1/health/?strict=maybe")
    # then it is told which values there are, instead of a guess at what it meant
    assert response.status_code == 400 and response["Content-Type"] == PROBLEM_JSON
    assert "true, false" in response.json()["detail"]
    assert anon_client.get("/api/v1/health/?strict=false").status_code == 200
