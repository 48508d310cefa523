"""The audit trail pages by sequence number (API and dashboard): every page costs the same, and
events written while someone pages never shift a page under them."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.audit.models import AuditEvent

pytestmark = pytest.mark.django_db

EVENTS = "/api/v1/audit/events/"


@pytest.fixture
def auditor_client(make_user, api_client_for):
    return api_client_for(make_user("auditor", username="alex-auditor"))


@pytest.fixture
def auditor(make_user, client):
    client.force_login(make_user("auditor", username="dana-auditor"))
    return client


def _seqs(body: dict) -> list[int]:
    return [e["seq"] for e in body["results"]]


def test_next_links_walk_the_whole_trail_newest_first_without_repeats(auditor_client, write_events):
    # given
    write_events(25)
    everything = list(AuditEvent.objects.order_by("-seq").values_list("seq", flat=True))
    # when
    seen, url = [], f"{EVENTS}?page_size=10"
    while url:
        body = auditor_client.get(url).json()
        seen += _seqs(body)
        url = body["next"]
    # then
    assert seen == everything
    assert body["count"] == len(everything) and body["count_exact"] is True


def test_previous_goes_back_to_the_same_page(auditor_client, write_events):
    # given
    write_events(25)
    first = auditor_client.get(EVENTS, {"page_size": 10}).json()
    second = auditor_client.get(first["next"]).json()
    # when
    back = auditor_client.get(second["previous"]).json()
    # then
    assert first["previous"] is None
    assert _seqs(back) == _seqs(first)
    assert back["previous"] is None  # nothing newer than the newest page


def test_events_written_meanwhile_do_not_shift_the_next_page(auditor_client, write_events):
    # given: someone reads the first page
    write_events(25)
    first = auditor_client.get(EVENTS, {"page_size": 10}).json()
    expected = list(AuditEvent.objects.order_by("-seq").values_list("seq", flat=True))[10:20]
    # when: more events are written before they ask for the next page
    write_events(7)
    second = auditor_client.get(first["next"]).json()
    # then: the next page starts right below the first one (an offset would repeat 7 events)
    assert _seqs(second) == expected


def test_the_keyset_filters_like_the_list(auditor_client, write_events):
    # given
    write_events(6, action="model.updated")
    write_events(6, action="dataset.created")
    # when
    first = auditor_client.get(EVENTS, {"action": "dataset.created", "page_size": 4}).json()
    second = auditor_client.get(first["next"]).json()
    # then
    assert {e["action"] for e in first["results"] + second["results"]} == {"dataset.created"}
    assert len(first["results"]) + len(second["results"]) == 6
    assert second["next"] is None


@pytest.mark.parametrize("params", [{"before": "x"}, {"after": "-1"}, {"before": "3", "after": "1"}])
def test_a_bad_cursor_is_a_400_naming_it(auditor_client, params):
    response = auditor_client.get(EVENTS, params)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"


def test_page_numbers_still_work(auditor_client, write_events):
    write_events(12)
    body = auditor_client.get(EVENTS, {"page": 2, "page_size": 5}).json()
    assert len(body["results"]) == 5
    assert "page=3" in body["next"]


def test_a_deep_page_costs_the_queries_of_the_first(auditor_client, write_events):
    # given
    write_events(30)
    with CaptureQueriesContext(connection) as first:
        body = auditor_client.get(EVENTS, {"page_size": 5}).json()
    for _ in range(4):
        body = auditor_client.get(body["next"]).json()
    # when
    with CaptureQueriesContext(connection) as deep:
        auditor_client.get(body["next"])
    # then: no COUNT over the table in either, the same statements
    assert len(deep) == len(first)
    assert not any("COUNT(*)" in q["sql"].upper() and "LIMIT" not in q["sql"].upper() for q in deep.captured_queries)


def test_the_dashboard_pages_older_and_newer(auditor, write_events):
    # given
    write_events(60)
    first = auditor.get("/audit/")
    oldest_shown = first.context["page"].events[-1].seq
    # when
    older = auditor.get("/audit/", {"before": oldest_shown})
    newer = auditor.get("/audit/", {"after": older.context["page"].events[0].seq})
    # then
    html = older.content.decode()
    assert "Newer" in html and "Newest" in html
    assert [e.seq for e in newer.context["page"].events] == [e.seq for e in first.context["page"].events]
