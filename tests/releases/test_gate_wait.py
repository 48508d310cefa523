"""``?wait=`` on the gate: a pipeline blocks on one request until the answer is final or changes, bounded
by ``ASSAY_GATE_MAX_WAIT``; the waiting request reads the stored state written by others (another thread
here, as a worker or a reviewer's request would), holds no database connection while it sleeps, and
writes nothing."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.db.backends.signals import connection_created

from apps.releases import services
from tests.releases.conftest import who

GATE = "/api/v1/models/churn/versions/1/gate/"


@pytest.fixture
def quick_polls(settings):
    settings.ASSAY_GATE_POLL_SECONDS = 0.02
    settings.ASSAY_GATE_MAX_WAIT = 60


@pytest.mark.django_db
@pytest.mark.parametrize("wait", ["-1", "soon", "nan", "inf", "1e999"])
def test_a_wait_that_is_not_a_number_of_seconds_is_a_400(api_client_for, requester, version, staging, wait):
    response = api_client_for(requester).get(GATE, {"environment": "staging", "wait": wait})
    body = response.json()
    assert response.status_code == 400 and body["code"] == "validation_failed"
    assert body["detail"].startswith("wait: give a number of seconds from 0 to 60") and "wait" in body["errors"]


@pytest.mark.django_db
def test_a_final_answer_returns_at_once_however_long_the_wait(
    api_client_for, request_release, requester, reviewer, version, quick_polls, decided
):
    # given an approved release: the gate is open, nothing will change that by waiting
    release = request_release(requester, version)
    services.approval_decide(actor=who(reviewer), release_id=release.public_id, decision="approve")
    decided()
    # when the pipeline asks to wait up to a minute
    response = api_client_for(requester, scopes=["read"]).get(GATE, {"environment": "staging", "wait": "60"})
    # then it answers without waiting, and says so
    body = response.json()
    assert body["allowed"] is True and body["wait_outcome"] == "final"
    assert body["waited"] == 0 and response["X-Assay-Waited"] == "0.000"


@pytest.mark.django_db
def test_without_wait_the_gate_says_it_did_not_wait(api_client_for, requester, version, staging):
    response = api_client_for(requester, scopes=["read"]).get(GATE, {"environment": "staging"})
    assert response.json()["wait_outcome"] == "not_asked" and response.json()["waited"] == 0


@pytest.mark.django_db
def test_the_wait_ends_with_the_answer_of_then_and_is_clamped_to_the_bound(
    api_client_for, request_release, requester, version, settings, quick_polls, decided
):
    # given a request nobody decides on, and a bound of a fifth of a second
    request_release(requester, version)
    decided()
    settings.ASSAY_GATE_MAX_WAIT = 0.2
    # when the pipeline asks to wait an hour
    response = api_client_for(requester, scopes=["read"]).get(GATE, {"environment": "staging", "wait": "3600"})
    # then it waited the bound, not the hour, and answers as things stand
    body = response.json()
    assert response.status_code == 200
    assert body["wait_outcome"] == "timeout" and body["status"] == "pending_approval" and body["allowed"] is False
    assert body["waited"] >= 0.2 and float(response["X-Assay-Waited"]) == body["waited"]


@pytest.mark.django_db(transaction=True)
def test_a_waiting_pipeline_returns_when_a_reviewer_approves_meanwhile(
    api_client_for, request_release, requester, reviewer, version, quick_polls, decided
):
    # given a release waiting for a reviewer, and a pipeline that asks the gate to wait up to a minute
    release = request_release(requester, version)
    decided()
    client = api_client_for(requester, scopes=["read"])
    answers: list = []
    polling = threading.Event()
    opened: list[int] = []
    waiter_id: list[int] = []

    def count_connections(sender, connection, **kwargs):
        # The waiting request opens a connection for the request, and again for each poll after a sleep
        # (it closes its connections before sleeping): a second one means it is polling.
        if waiter_id and threading.get_ident() == waiter_id[0]:
            opened.append(1)
            if len(opened) >= 2:
                polling.set()

    def pipeline():
        waiter_id.append(threading.get_ident())
        try:
            answers.append(client.get(GATE, {"environment": "staging", "wait": "60"}))
        finally:
            polling.set()
            connection.close()

    connection_created.connect(count_connections)
    try:
        waiter = threading.Thread(target=pipeline)
        waiter.start()
        assert polling.wait(timeout=60), "the gate never polled"
        # when a reviewer approves while it waits (another thread, through the service)
        services.approval_decide(actor=who(reviewer), release_id=release.public_id, decision="approve")
        waiter.join(timeout=60)
    finally:
        connection_created.disconnect(count_connections)
    # then the waiting request returns the new answer, says it changed, and had let go of its connection
    [response] = answers
    body = response.json()
    assert response.status_code == 200, body
    assert body["allowed"] is True and body["status"] == "allowed" and body["wait_outcome"] == "changed"
    assert len(opened) >= 2
