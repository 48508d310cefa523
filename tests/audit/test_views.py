"""The dashboard's audit page: table, filters, exports and verification, for those allowed to see them."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def auditor(make_user, client):
    user = make_user("auditor", username="alex-auditor")
    client.force_login(user)
    return client


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get("/audit/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.parametrize("url", ["/audit/", "/audit/export.csv", "/audit/export.jsonl", "/audit/verify/"])
def test_a_viewer_gets_the_403_page_and_the_attempt_is_audited(make_user, client, audit_mark, url):
    # given
    client.force_login(make_user("viewer", username="vic"))
    mark = audit_mark()
    # when
    response = client.get(url)
    # then
    assert response.status_code == 403
    assert b"permission" in response.content.lower()
    assert [(e.actor_name, e.outcome, e.source) for e in mark.new()] == [("vic", "denied", "web")]


def test_the_page_lists_events_with_outcome_badges_and_export_buttons(auditor, write_events):
    # given
    write_events(3, reason="quarterly review")
    # when
    response = auditor.get("/audit/")
    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="audit-table"' in html
    assert "quarterly review" in html
    assert "badge badge-success" in html
    assert 'href="/audit/export.csv"' in html
    assert 'href="/audit/export.jsonl"' in html
    assert 'href="/audit/verify/"' in html


def test_filters_narrow_the_table_and_carry_into_the_export_links(auditor, write_events):
    # given
    write_events(2, action="model.updated", reason="kept")
    write_events(2, action="version.created", reason="filtered out")
    # when
    response = auditor.get("/audit/", {"action": "model.*", "target": "model"})
    # then
    html = response.content.decode()
    assert "kept" in html
    assert "filtered out" not in html
    assert "/audit/export.csv?action=model.%2A&amp;target_type=model" in html


def test_a_bad_filter_is_shown_and_matches_nothing(auditor, write_events):
    write_events(1, reason="should not show")
    response = auditor.get("/audit/", {"since": "last tuesday"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Enter an ISO 8601 date or time." in html
    assert "should not show" not in html


def test_the_table_shows_fifty_events_a_page(auditor, write_events):
    write_events(60)
    first = auditor.get("/audit/")
    events = first.context["page"].events
    assert len(events) == 50
    assert f"?before={events[-1].seq}" in first.content.decode()  # the "Older" link
    second = auditor.get("/audit/", {"before": events[-1].seq})
    assert len(second.context["page"].events) == AuditEvent.objects.count() - 50
    assert all(e.seq < events[-1].seq for e in second.context["page"].events)


def test_the_page_query_count_does_not_grow_with_the_rows(auditor, write_events):
    write_events(2)
    with CaptureQueriesContext(connection) as few:
        auditor.get("/audit/")
    write_events(40)
    with CaptureQueriesContext(connection) as many:
        auditor.get("/audit/")
    assert len(many) == len(few)


def test_the_dashboard_export_is_the_same_verifiable_export_and_is_audited(auditor, write_events, audit_mark):
    # given
    write_events(3)
    mark = audit_mark()
    # when
    response = auditor.get("/audit/export.jsonl", {"action": "model.updated"})
    rows = [json.loads(line) for line in b"".join(response.streaming_content).decode().split("\n") if line]
    # then
    assert response.status_code == 200
    assert len(rows) == 3
    assert all(len(r["hash"]) == 64 for r in rows)
    exported = mark.new()
    assert [(e.action, e.source, e.actor_name) for e in exported] == [("audit.exported", "web", "alex-auditor")]
    assert exported[0].after["rows"] == 3


def test_the_dashboard_csv_export_downloads(auditor, write_events):
    write_events(2)
    response = auditor.get("/audit/export.csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    assert body.startswith("seq,event_id,occurred_at,")


def test_the_verify_page_says_the_trail_is_intact(auditor, write_events, checkpoint):
    write_events(3)
    checkpoint()
    response = auditor.get("/audit/verify/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "The audit trail is intact" in html
    assert "1 matched of 1 found" in html


def test_the_verify_page_names_the_first_bad_event(auditor, write_events, attacker):
    events = write_events(4)
    attacker.modify(events[1].seq)
    html = auditor.get("/audit/verify/").content.decode()
    assert "NOT intact" in html
    assert f"first bad sequence number {events[1].seq}" in html
