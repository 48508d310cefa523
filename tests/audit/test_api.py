"""Audit API: filtered, paginated events; CSV and JSON Lines exports (audited); verification."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from apps.audit import services as audit
from apps.audit.chain import seal_pending
from apps.audit.exports import EXPORT_FIELDS
from apps.audit.models import AuditEvent
from apps.core.principals import Principal

pytestmark = pytest.mark.django_db

EVENTS = "/api/v1/audit/events/"
EXPORT = "/api/v1/audit/export/"
VERIFY = "/api/v1/audit/verify/"


@pytest.fixture
def auditor_client(make_user, api_client_for):
    return api_client_for(make_user("auditor", username="alex-auditor"))


@pytest.fixture
def trail(db):
    """A small, varied trail: two people, a CI account, a denial, a failure."""
    dana = Principal(kind="user", id=101, name="dana")
    erin = Principal(kind="user", id=102, name="erin")
    ci = Principal(kind="service_account", id=7, name="ci-credit", owner_user_id=101, token_id="tok_ci")
    with transaction.atomic():
        audit.record(action="model.created", actor=dana, target=("model", "1", "churn"), after={"risk_tier": "high"})
        audit.record(action="model.updated", actor=erin, target=("model", "1", "churn"), reason="tier reviewed")
        audit.record(action="version.created", actor=ci, target=("version", "11", "churn v1"), related=("model", "1"))
        audit.record(action="release.approved", actor=erin, outcome="denied", target=("release", "5", "churn v1"))
        audit.record(action="version.verified", actor=Principal.system(), outcome="failed", target=("version", "11"))
    seal_pending(blocking=True)
    return AuditEvent.objects.filter(action="model.created").get().seq  # the trail's first event


# ---- permissions -------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [EVENTS, EXPORT, VERIFY])
def test_anonymous_requests_get_401(anon_client, url):
    response = anon_client.get(url)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize("url", [EVENTS, EXPORT, VERIFY])
def test_a_viewer_gets_403_and_the_attempt_is_audited(make_user, api_client_for, audit_mark, url):
    # given
    client = api_client_for(make_user("viewer", username="vic"))
    mark = audit_mark()
    # when
    response = client.get(url)
    # then
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    denied = mark.new(outcome="denied")
    assert [e.actor_name for e in denied] == ["vic"]


@pytest.mark.parametrize("role", ["auditor", "compliance_officer", "admin"])
@pytest.mark.parametrize("url", [EVENTS, EXPORT, VERIFY])
def test_audit_roles_get_200(make_user, api_client_for, trail, role, url):
    client = api_client_for(make_user(role))
    response = client.get(url)
    assert response.status_code == 200


def test_a_token_without_the_audit_scope_cannot_read_the_trail(make_user, api_client_for):
    client = api_client_for(make_user("auditor"), scopes=["read"])
    response = client.get(EVENTS)
    assert response.status_code == 403
    assert "audit:read" in response.json()["detail"]


def test_a_team_scoped_auditor_binding_does_not_open_the_global_trail(make_user, api_client_for, team):
    client = api_client_for(make_user("auditor", team=team))
    assert client.get(EVENTS).status_code == 403


# ---- the list ----------------------------------------------------------------------------------


def test_events_are_listed_newest_first_with_every_field(auditor_client, trail):
    response = auditor_client.get(EVENTS, {"action": "model.*"})
    body = response.json()
    assert [e["action"] for e in body["results"]] == ["model.updated", "model.created"]
    first = body["results"][1]
    assert first["actor_name"] == "dana"
    assert first["after"] == {"risk_tier": "high"}
    assert len(first["hash"]) == 64
    assert first["seq"] < body["results"][0]["seq"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"actor": "erin"}, ["release.approved", "model.updated"]),
        ({"actor": "user:101"}, ["model.created"]),
        ({"actor": "service_account:7"}, ["version.created"]),
        ({"actor": "system:"}, ["version.verified"]),
        ({"action": "version.created"}, ["version.created"]),
        ({"action": "version.*"}, ["version.verified", "version.created"]),
        ({"outcome": "denied"}, ["release.approved"]),
        ({"outcome": "failed"}, ["version.verified"]),
        ({"target_type": "version"}, ["version.verified", "version.created"]),
        ({"target_type": "model", "target_id": "1"}, ["model.updated", "model.created"]),
        ({"target": "release:5"}, ["release.approved"]),
    ],
)
def test_events_can_be_filtered(auditor_client, trail, params, expected):
    response = auditor_client.get(EVENTS, {**params, "page_size": 100})
    assert response.status_code == 200
    assert [e["action"] for e in response.json()["results"] if e["seq"] >= trail] == expected


def test_events_can_be_filtered_by_time(auditor_client, trail):
    now = datetime.now(UTC)
    later = (now + timedelta(hours=1)).isoformat()
    earlier = (now - timedelta(hours=1)).isoformat()
    assert auditor_client.get(EVENTS, {"since": later}).json()["count"] == 0
    assert auditor_client.get(EVENTS, {"until": earlier}).json()["count"] == 0
    in_range = auditor_client.get(EVENTS, {"since": earlier, "until": later, "action": "model.*"}).json()
    assert in_range["count"] == 2
    # a bare date as `until` includes that whole day
    today = auditor_client.get(EVENTS, {"until": now.date().isoformat(), "action": "model.*"}).json()
    assert today["count"] == 2


@pytest.mark.parametrize(
    ("params", "field"),
    [({"since": "yesterday"}, "since"), ({"outcome": "maybe"}, "outcome"), ({"action": "*.created"}, "action")],
)
def test_a_bad_filter_is_a_400_problem_naming_the_parameter(auditor_client, params, field):
    response = auditor_client.get(EVENTS, params)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert field in response.json()["errors"]


def test_the_list_is_paginated(auditor_client, write_events):
    write_events(7)
    body = auditor_client.get(EVENTS, {"page_size": 3}).json()
    assert len(body["results"]) == 3
    assert body["count"] >= 7
    assert body["next"]


def test_the_query_count_does_not_grow_with_the_page_size(auditor_client, write_events):
    # given
    write_events(60)
    auditor_client.get(EVENTS, {"page_size": 1})  # the token's first use writes last_used_at once
    with CaptureQueriesContext(connection) as small:
        assert auditor_client.get(EVENTS, {"page_size": 5}).status_code == 200
    # when / then
    with CaptureQueriesContext(connection) as large:
        response = auditor_client.get(EVENTS, {"page_size": 50})
    assert len(response.json()["results"]) == 50
    assert len(large) == len(small)


def test_the_query_count_is_pinned(auditor_client, write_events, django_assert_max_num_queries):
    write_events(20)
    auditor_client.get(EVENTS)
    counts = []
    for size in (5, 20):
        with django_assert_max_num_queries(5) as captured:
            # token lookup, role bindings, the pending events, the page, the count (a read seals nothing)
            auditor_client.get(EVENTS, {"page_size": size})
        counts.append(len(captured))
    assert counts[0] == counts[1]


# ---- exports -----------------------------------------------------------------------------------


def read_jsonl(response) -> list[dict]:
    body = b"".join(response.streaming_content).decode("utf-8")
    return [json.loads(line) for line in body.split("\n") if line]


def read_csv(response) -> list[dict]:
    body = b"".join(response.streaming_content).decode("utf-8")
    return list(csv.DictReader(io.StringIO(body)))


def test_the_jsonl_export_carries_every_chained_field_and_the_hashes(auditor_client, trail):
    # when
    response = auditor_client.get(EXPORT, {"format": "jsonl"})
    # then
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/jsonl")
    assert "attachment" in response["Content-Disposition"]
    rows = read_jsonl(response)
    assert list(rows[0]) == list(EXPORT_FIELDS)
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
    stored = {e.seq: e for e in AuditEvent.objects.filter(seq__isnull=False)}
    for row in rows:
        assert row["hash"] == stored[row["seq"]].hash
        assert row["prev_hash"] == stored[row["seq"]].prev_hash
    created = next(r for r in rows if r["action"] == "model.created")
    assert created["actor_name"] == "dana"
    assert created["target_name"] == "churn"
    assert created["after"] == {"risk_tier": "high"}
    assert created["occurred_at"].endswith("Z")
    assert len(created["event_id"]) == 32


def test_an_export_is_itself_audited_with_its_filters_and_row_count(auditor_client, trail, audit_mark):
    # given
    mark = audit_mark()
    # when
    response = auditor_client.get(EXPORT, {"format": "csv", "action": "model.*"})
    rows = read_csv(response)
    # then
    events = mark.new()
    assert [e.action for e in events] == ["audit.exported"]
    assert events[0].actor_name == "alex-auditor"
    assert events[0].after["format"] == "csv"
    assert events[0].after["filters"] == {"action": "model.*"}
    assert events[0].after["rows"] == len(rows) == 2


def test_an_export_does_not_include_its_own_audit_event(auditor_client, trail):
    rows = read_jsonl(auditor_client.get(EXPORT))
    assert "audit.exported" not in {r["action"] for r in rows}
    seal_pending(blocking=True)  # the periodic seal task: an export seals nothing itself
    again = read_jsonl(auditor_client.get(EXPORT))
    assert [r["action"] for r in again][-1] == "audit.exported"  # the first export, now in the trail


def test_the_export_uses_the_same_filters_as_the_list(auditor_client, trail):
    rows = read_jsonl(auditor_client.get(EXPORT, {"format": "jsonl", "actor": "erin"}))
    assert [r["action"] for r in rows] == ["model.updated", "release.approved"]


def test_csv_cells_that_a_spreadsheet_would_run_are_escaped(auditor_client):
    # given: reasons that spreadsheets read as formulas
    dangerous = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"]
    with transaction.atomic():
        for text in dangerous:
            audit.record(action="model.updated", target=("model", "1", "=cmd|' /C calc'!A0"), reason=text)
        audit.record(action="model.updated", target=("model", "1", "plain"), reason="plain text")
    seal_pending(blocking=True)
    # when
    rows = read_csv(auditor_client.get(EXPORT, {"format": "csv", "action": "model.updated"}))
    # then
    assert [r["reason"] for r in rows] == ["'" + text for text in dangerous] + ["plain text"]
    assert rows[0]["target_name"] == "'=cmd|' /C calc'!A0"
    assert rows[-1]["target_name"] == "plain"


def test_an_unknown_export_format_is_a_400_problem(auditor_client):
    response = auditor_client.get(EXPORT, {"format": "xml"})
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert "format" in response.json()["errors"]
