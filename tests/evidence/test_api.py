"""Evidence API: who may request and read runs, validation, reuse and re-run, with their audit events."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.evidence.models import EvidenceRun
from apps.jobs.models import JobStatus
from tests.evidence.conftest import SCHEMA

pytestmark = pytest.mark.django_db

VERSION_URL = "/api/v1/models/churn/versions/1/evidence/"


def _denials(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, outcome="denied"))


@pytest.fixture
def cora(api_client_for, contributor):
    return api_client_for(contributor)


@pytest.fixture
def requested(cora, version):
    response = cora.post(VERSION_URL, {"kind": "bias"}, format="json")
    assert response.status_code == 202, response.content
    return response.json()


# ---------------------------------------------------------------------------------------------
# Access


def test_anonymous_requests_are_401(anon_client, version, requested):
    assert anon_client.post(VERSION_URL, {"kind": "bias"}, format="json").status_code == 401
    assert anon_client.get(VERSION_URL).status_code == 401
    assert anon_client.get(f"/api/v1/evidence/{requested['id']}/").status_code == 401


def test_without_a_role_the_version_and_its_runs_are_not_found(make_user, api_client_for, requested, audit_mark):
    # given someone with no role at all
    client = api_client_for(make_user())
    mark = audit_mark()
    # when / then
    response = client.post(VERSION_URL, {"kind": "bias"}, format="json")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert client.get(VERSION_URL).status_code == 404
    assert client.get(f"/api/v1/evidence/{requested['id']}/").status_code == 404
    assert "evidence_run.requested" in [e.action for e in mark.new(outcome="denied")]
    assert EvidenceRun.objects.count() == 1


def test_a_viewer_reads_runs_but_may_not_request_one(make_user, api_client_for, team, requested, audit_mark):
    # given a viewer on the model's team
    client = api_client_for(make_user("viewer", team=team))
    mark = audit_mark()
    # when they ask for evidence
    response = client.post(VERSION_URL, {"kind": "bias"}, format="json")
    # then it is refused (they can see the version), and the refusal is on record
    assert response.status_code == 403
    assert [e.action for e in mark.new(outcome="denied")] == ["evidence_run.requested"]
    # and they read the run and the version's list
    detail = client.get(f"/api/v1/evidence/{requested['id']}/")
    assert detail.status_code == 200 and detail.json()["id"] == requested["id"]
    listing = client.get(VERSION_URL)
    assert listing.status_code == 200
    assert [r["id"] for r in listing.json()["results"]] == [requested["id"]]


def test_a_viewer_of_another_team_sees_no_runs(make_user, api_client_for, other_team, requested):
    client = api_client_for(make_user("viewer", team=other_team))
    assert client.get(f"/api/v1/evidence/{requested['id']}/").status_code == 404
    assert client.get(VERSION_URL).status_code == 404


def test_a_contributor_requests_bias_evidence_on_a_version(cora, version, dataset, audit_mark):
    mark = audit_mark()
    # when
    response = cora.post(VERSION_URL, {"kind": "bias"}, format="json")
    # then: accepted, the run's URL given, the defaults filled from the dataset's column roles
    assert response.status_code == 202, response.content
    body = response.json()
    assert response["Location"].endswith(f"/api/v1/evidence/{body['id']}/")
    assert body["status"] == "queued" and body["reused"] is False and body["progress"] == 0
    assert body["parameters"] == {
        "sensitive_columns": ["sex", "region"],
        "label_column": "label",
        "prediction_column": "prediction",
        "positive_label": None,
        "reference_groups": {},
    }
    assert body["subject"] == {
        "type": "model_version",
        "model": "churn",
        "version": 1,
        "dataset": dataset.pk,
        "version_url": "http://testserver/api/v1/models/churn/versions/1/",
        "dataset_url": f"http://testserver/api/v1/datasets/{dataset.pk}/",
    }
    assert body["input_digests"] == {"dataset": dataset.sha256, "model_version": version.sha256}
    assert body["requested_by"] == {"user": "cora", "service_account": None}
    run = EvidenceRun.objects.get(public_id=body["id"])
    assert run.job.kind == "evidence.run" and run.job.status == JobStatus.QUEUED
    assert run.job.params == {"run_id": run.pk}
    assert len(run.reuse_key) == 64
    events = mark.new()
    assert [e.action for e in events] == ["evidence_run.requested"]
    assert events[0].target_id == body["id"] and events[0].actor_name == "cora"


def test_a_contributor_requests_bias_evidence_on_a_dataset(cora, dataset, audit_mark):
    mark = audit_mark()
    response = cora.post(
        f"/api/v1/datasets/{dataset.pk}/evidence/",
        {"kind": "bias", "parameters": {"sensitive_columns": ["sex"], "positive_label": 1}},
        format="json",
    )
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["subject"]["type"] == "dataset" and body["subject"]["model"] is None
    assert body["input_digests"] == {"dataset": dataset.sha256}
    assert body["parameters"]["sensitive_columns"] == ["sex"]
    assert mark.actions() == ["evidence_run.requested"]
    listing = cora.get(f"/api/v1/datasets/{dataset.pk}/evidence/")
    assert [r["id"] for r in listing.json()["results"]] == [body["id"]]


# ---------------------------------------------------------------------------------------------
# Validation


@pytest.mark.parametrize(
    "payload, status, words",
    [
        ({"kind": "astrology"}, 400, ["Unknown kind 'astrology'", "bias"]),
        ({"kind": "pii_scan", "parameters": {"entities": ["HOROSCOPE"]}}, 400, ["Unknown entity type", "HOROSCOPE"]),
        ({"kind": "pii_scan", "parameters": {"columns": ["shoe_size"]}}, 400, ["'shoe_size'"]),
        ({"kind": "pii_scan", "parameters": {"operators": {"PERSON": "hash"}}}, 400, ["only used with scrub"]),
        (
            {"kind": "pii_scan", "parameters": {"scrub": True, "operators": {"PERSON": "shred"}}},
            400,
            ["unknown operator 'shred'"],
        ),
        ({"kind": "pii_scan", "parameters": {"score_threshold": 2}}, 400, ["score_threshold"]),
        ({"kind": "explainability"}, 400, ["holds predictions only", "no model to explain"]),
        ({"kind": "bias", "parameters": {"sensitive_columns": ["sex", "shoe_size"]}}, 400, ["'shoe_size'"]),
        ({"kind": "bias", "parameters": {"label_column": "truth"}}, 400, ["'truth'"]),
        ({"kind": "bias", "parameters": {"reference_groups": {"income": 1}}}, 400, ["not sensitive columns"]),
        ({"kind": "bias", "parameters": {"threshold": 0.5}}, 400, ["Unknown parameter", "threshold"]),
    ],
    ids=[
        "unknown-kind",
        "pii-entity",
        "pii-column",
        "pii-operators-without-scrub",
        "pii-operator",
        "pii-threshold",
        "explain-predictions-only",
        "unknown-sensitive",
        "unknown-label",
        "ref",
        "param",
    ],
)
def test_a_request_that_cannot_be_computed_is_refused_and_nothing_is_created(
    cora, version, audit_mark, payload, status, words
):
    mark = audit_mark()
    response = cora.post(VERSION_URL, payload, format="json")
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    for word in words:
        assert word in response.json()["detail"]
    assert EvidenceRun.objects.count() == 0
    assert mark.actions(action__startswith="evidence_run.") == []


def test_a_dataset_without_a_prediction_column_is_refused_pointing_to_the_models_versions(cora, make_dataset):
    schema = [c for c in SCHEMA if c["name"] != "prediction"]
    columns = [c["name"] for c in schema]
    dataset = make_dataset(schema=schema, columns=columns, name="unscored")
    response = cora.post(f"/api/v1/datasets/{dataset.pk}/evidence/", {"kind": "bias"}, format="json")
    assert response.status_code == 400
    assert "no prediction column" in response.json()["detail"]
    assert "ask for the report on a model version" in response.json()["detail"]


def test_a_dataset_still_pending_verification_is_a_409(cora, make_dataset):
    dataset = make_dataset(verify=False)
    response = cora.post(f"/api/v1/datasets/{dataset.pk}/evidence/", {"kind": "bias"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "subject_not_ready"
    assert "pending verification, not ready" in response.json()["detail"]
    assert EvidenceRun.objects.count() == 0


def test_a_retired_version_is_a_409(cora, version, contributor_principal):
    from apps.registry import services as registry

    registry.version_retire(actor=contributor_principal, model_name="churn", number=1, reason="superseded")
    response = cora.post(VERSION_URL, {"kind": "bias"}, format="json")
    assert response.status_code == 409
    assert "Version 1 of churn is retired, not ready" in response.json()["detail"]


def test_an_unknown_run_id_is_404(cora, version):
    assert cora.get("/api/v1/evidence/00000000-0000-0000-0000-000000000001/").status_code == 404


# ---------------------------------------------------------------------------------------------
# Reuse and re-run


def test_the_same_request_reuses_the_run_unless_a_rerun_is_asked(cora, requested, audit_mark):
    mark = audit_mark()
    # when the same evidence is asked again, defaults spelled out
    again = cora.post(
        VERSION_URL,
        {"kind": "bias", "parameters": {"label_column": "label", "sensitive_columns": ["sex", "region"]}},
        format="json",
    )
    # then the run in progress is the answer
    assert again.status_code == 200, again.content
    assert again.json()["id"] == requested["id"] and again.json()["reused"] is True
    assert again["Location"] == requested["url"]
    assert mark.actions() == ["evidence_run.reused"]
    # when a re-run is asked
    rerun = cora.post(VERSION_URL, {"kind": "bias", "rerun": True}, format="json")
    # then a new run is queued
    assert rerun.status_code == 202
    assert rerun.json()["id"] != requested["id"] and rerun.json()["reused"] is False
    assert mark.actions() == ["evidence_run.reused", "evidence_run.requested"]
    assert EvidenceRun.objects.count() == 2


def test_different_parameters_are_a_different_run(cora, requested):
    other = cora.post(VERSION_URL, {"kind": "bias", "parameters": {"sensitive_columns": ["sex"]}}, format="json")
    assert other.status_code == 202 and other.json()["id"] != requested["id"]


def test_the_openapi_schema_describes_every_summary_and_the_new_endpoints(anon_client):
    # given the published API schema
    schema = anon_client.get("/api/v1/schema/", {"format": "json"}).json()
    # then a run's summary is one of the three versioned documents policies read
    run = schema["components"]["schemas"]["EvidenceRunOutput"]["properties"]["summary"]
    assert [s["title"] for s in run["oneOf"]] == ["assay.bias/v1", "assay.explain/v1", "assay.pii/v1"]
    # and cancel, reviews and downloads are documented paths
    for path in ("/api/v1/evidence/{run_id}/cancel/", "/api/v1/evidence/{run_id}/reviews/"):
        assert "post" in schema["paths"][path]
    assert "get" in schema["paths"]["/api/v1/evidence/{run_id}/files/{name}/"]


def test_the_schema_generates_without_warnings():
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")
