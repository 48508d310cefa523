"""Policies API: permission triad, audit events after every write, upload checks, versions, dry-run."""

from __future__ import annotations

import pytest

from apps.policies.models import PolicyPack, PolicyPackVersion
from tests.factories.policies import compliant_model, compliant_version

pytestmark = pytest.mark.django_db

GOOD = """package assay.loan_limits

import rego.v1

applies := true

rules := [{"rule": "loan_limits.card", "clause": "Internal policy L-1", "title": "A model card", "applies": true}]

violations contains v if {
	count(input.version.model_card) == 0
	v := {
		"rule": "loan_limits.card", "message": "Internal policy L-1: the version has no model card",
		"clause": "Internal policy L-1", "severity": "blocking",
	}
}
"""

SYNTAX_ERROR = """package assay.loan_limits

import rego.v1

violations contains v if {
	v := = 1
}
"""

WRONG_SHAPE = """package assay.loan_limits

import rego.v1

violations contains v if {
	v := {"rule": "loan_limits.card", "text": "no clause, no severity"}
}
"""

WRONG_PACKAGE = GOOD.replace("package assay.loan_limits", "package something.else")


@pytest.fixture
def officer(make_user):
    return make_user("compliance_officer", username="olga")


@pytest.fixture
def officer_client(officer, api_client_for):
    return api_client_for(officer)


def test_list_permission_triad(anon_client, make_user, api_client_for):
    # anonymous: 401
    assert anon_client.get("/api/v1/policies/").status_code == 401
    # no role: 403
    assert api_client_for(make_user()).get("/api/v1/policies/").status_code == 403
    # a viewer: the shipped packs
    response = api_client_for(make_user("viewer")).get("/api/v1/policies/")
    assert response.status_code == 200
    names = [p["name"] for p in response.json()["results"]]
    assert {"security", "gdpr", "eu-ai-act"} <= set(names)


def test_upload_permission_triad_and_audit(anon_client, make_user, api_client_for, officer_client, audit_mark):
    body = {"name": "loan-limits", "source": GOOD.replace("loan_limits", "loan_limits"), "note": "first"}
    body["source"] = GOOD
    # anonymous
    assert anon_client.post("/api/v1/policies/", body, format="json").status_code == 401
    # a reviewer (no policies.manage): 403, audited as denied
    reviewer_client = api_client_for(make_user("reviewer"))
    mark = audit_mark()
    response = reviewer_client.post("/api/v1/policies/", body, format="json")
    assert response.status_code == 403
    assert [(e.action, e.outcome) for e in mark.new()] == [("policy_pack.created", "denied")]
    # a team-scoped compliance officer: policies.manage is global only
    team_officer = make_user("compliance_officer", team=compliant_model().owner_team)
    assert api_client_for(team_officer).post("/api/v1/policies/", body, format="json").status_code == 403
    # a compliance officer: 201, pack and version created, audited
    mark = audit_mark()
    response = officer_client.post("/api/v1/policies/", body, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["name"] == "loan-limits" and data["latest_version"] == 1 and data["source"] == GOOD
    assert mark.actions() == ["policy_pack.created", "policy_pack.version_created"]
    assert mark.new()[0].actor_name == "olga"


def test_syntax_error_is_a_400_naming_the_line(officer_client, audit_mark):
    mark = audit_mark()
    response = officer_client.post("/api/v1/policies/", {"name": "loan-limits", "source": SYNTAX_ERROR}, format="json")
    assert response.status_code == 400
    problem = response.json()
    assert problem["line"] == 6
    assert "Line 6" in problem["detail"]
    assert not PolicyPack.objects.filter(name="loan-limits").exists()
    assert mark.actions() == []


@pytest.mark.parametrize(
    ("source", "words"),
    [(WRONG_SHAPE, "rule, message, clause, severity"), (WRONG_PACKAGE, "package assay.loan_limits")],
)
def test_wrong_shape_or_package_is_a_400(officer_client, source, words):
    response = officer_client.post("/api/v1/policies/", {"name": "loan-limits", "source": source}, format="json")
    assert response.status_code == 400
    assert words in response.json()["detail"]


def test_versions_are_new_rows_never_edits(officer_client, audit_mark):
    officer_client.post("/api/v1/policies/", {"name": "loan-limits", "source": GOOD}, format="json")
    # when a new version is uploaded
    mark = audit_mark()
    v2 = GOOD.replace("Internal policy L-1: the version", "Internal policy L-1 (2025): the version")
    response = officer_client.post(
        "/api/v1/policies/loan-limits/versions/", {"source": v2, "note": "wording"}, format="json"
    )
    # then
    assert response.status_code == 201
    assert response.json()["number"] == 2
    assert mark.actions() == ["policy_pack.version_created"]
    assert list(PolicyPackVersion.objects.filter(pack__name="loan-limits").values_list("number", flat=True)) == [2, 1]
    assert PolicyPackVersion.objects.get(pack__name="loan-limits", number=1).source == GOOD
    listed = officer_client.get("/api/v1/policies/loan-limits/versions/").json()["results"]
    assert [v["number"] for v in listed] == [2, 1]
    assert officer_client.get("/api/v1/policies/loan-limits/versions/1/").json()["source"] == GOOD
    # the same source again is a conflict; a syntax error a 400
    assert (
        officer_client.post("/api/v1/policies/loan-limits/versions/", {"source": v2}, format="json").status_code == 409
    )
    bad = officer_client.post("/api/v1/policies/loan-limits/versions/", {"source": SYNTAX_ERROR}, format="json")
    assert bad.status_code == 400 and bad.json()["line"] == 6


def test_shipped_packs_are_not_uploaded_over(officer_client):
    response = officer_client.post("/api/v1/policies/security/versions/", {"source": GOOD}, format="json")
    assert response.status_code == 409
    assert (
        officer_client.post("/api/v1/policies/", {"name": "security", "source": GOOD}, format="json").status_code == 409
    )


def test_version_upload_needs_policies_manage(make_user, api_client_for, officer_client, audit_mark):
    officer_client.post("/api/v1/policies/", {"name": "loan-limits", "source": GOOD}, format="json")
    contributor_client = api_client_for(make_user("contributor"))
    mark = audit_mark()
    response = contributor_client.post("/api/v1/policies/loan-limits/versions/", {"source": GOOD + "\n"}, format="json")
    assert response.status_code == 403
    assert [(e.action, e.outcome) for e in mark.new()] == [("policy_pack.version_created", "denied")]


def test_bindings_apply_a_custom_pack_and_are_audited(officer_client, make_user, api_client_for, audit_mark):
    # given a custom pack and a version without a model card
    officer_client.post("/api/v1/policies/", {"name": "loan-limits", "source": GOOD}, format="json")
    version = compliant_version(model_card={})
    model = version.model
    decision_url = f"/api/v1/models/{model.name}/versions/{version.number}/policy-decision/?environment=staging"
    assert "loan-limits" not in {p["name"] for p in officer_client.get(decision_url).json()["packs"]}
    # when a reviewer tries to bind it: 403, audited
    reviewer_client = api_client_for(make_user("reviewer"))
    mark = audit_mark()
    denied = reviewer_client.post("/api/v1/policies/loan-limits/bindings/", {"model": model.name}, format="json")
    assert denied.status_code == 403
    assert [(e.action, e.outcome) for e in mark.new()] == [("policy_binding.created", "denied")]
    # when the officer binds it to the model in staging
    mark = audit_mark()
    response = officer_client.post(
        "/api/v1/policies/loan-limits/bindings/", {"model": model.name, "environment": "staging"}, format="json"
    )
    assert response.status_code == 201
    assert mark.actions() == ["policy_binding.created"]
    # then it applies in staging, not in production
    staging = officer_client.get(decision_url).json()
    assert not staging["allow"]
    assert [v["rule"] for v in staging["violations"]] == ["loan_limits.card"]
    production = officer_client.get(decision_url.replace("staging", "production")).json()
    assert "loan-limits" not in {p["name"] for p in production["packs"]}
    # when the binding is deleted
    mark = audit_mark()
    assert officer_client.delete(f"/api/v1/policies/bindings/{response.json()['id']}/").status_code == 204
    assert mark.actions() == ["policy_binding.deleted"]
    assert officer_client.get(decision_url).json()["allow"]


def test_decision_endpoint_triad(anon_client, make_user, api_client_for, other_team):
    version = compliant_version()
    url = f"/api/v1/models/{version.model.name}/versions/{version.number}/policy-decision/?environment=production"
    assert anon_client.get(url).status_code == 401
    # a viewer on another team cannot see the version: 404
    assert api_client_for(make_user("viewer", team=other_team)).get(url).status_code == 404
    # a viewer on the model's team
    response = api_client_for(make_user("viewer", team=version.model.owner_team)).get(url)
    assert response.status_code == 200
    body = response.json()
    assert body["allow"] is True
    assert body["required_approvals"] == [
        {
            "role": "reviewer",
            "count": 1,
            "reason": "baseline.production_review: Assay baseline B-1 (production change review)",
        }
    ]
    assert len(body["binding_digest"]) == 64
    assert body["input"]["environment"] == {"name": "production", "production": True}


def test_dry_run_of_a_pack_version_against_a_version(officer_client):
    officer_client.post("/api/v1/policies/", {"name": "loan-limits", "source": GOOD}, format="json")
    version = compliant_version(model_card={})
    body = {
        "model": version.model.name,
        "version": version.number,
        "environment": "staging",
        "pack": "loan-limits",
        "pack_version": 1,
    }
    response = officer_client.post("/api/v1/policies/dry-run/", body, format="json")
    assert response.status_code == 200
    decision = response.json()
    assert {"name": "loan-limits", "version": 1} in [{k: p[k] for k in ("name", "version")} for p in decision["packs"]]
    row = next(r for r in decision["rules"] if r["rule"] == "loan_limits.card")
    assert row["result"] == "fail" and row["clause"] == "Internal policy L-1"


def test_dry_run_needs_to_see_the_version(make_user, api_client_for, other_team):
    version = compliant_version()
    body = {"model": version.model.name, "version": version.number, "environment": "staging"}
    assert (
        api_client_for(make_user("viewer", team=other_team))
        .post("/api/v1/policies/dry-run/", body, format="json")
        .status_code
        == 404
    )


def test_a_pack_failing_at_evaluation_blocks_with_a_clear_violation(officer_client):
    # given a pack that compiles and passes the upload check but fails on some inputs (a rule with two values)
    source = GOOD + (
        "\nlevel := 1 if count(input.version.metrics) == 0\n\nlevel := 2 if count(input.version.metrics) == 0\n"
    )
    assert (
        officer_client.post("/api/v1/policies/", {"name": "loan-limits", "source": source}, format="json").status_code
        == 201
    )
    version = compliant_version(metrics={})
    body = {"model": version.model.name, "version": version.number, "environment": "staging", "pack": "loan-limits"}
    # when
    response = officer_client.post("/api/v1/policies/dry-run/", body, format="json")
    # then a 200 with a blocking violation naming the pack, not a 500
    assert response.status_code == 200
    decision = response.json()
    assert decision["allow"] is False
    failure = next(v for v in decision["violations"] if v["pack"] == "loan-limits")
    assert failure["rule"] == "loan_limits.evaluation_error" and failure["severity"] == "blocking"
    assert "could not be evaluated" in failure["message"]


def test_the_pack_list_query_count_does_not_grow_with_packs_or_versions(
    api_client_for, make_user, officer, django_assert_max_num_queries
):
    from apps.accounts.principals import principal_for_user
    from apps.policies import services

    # given ten custom packs besides the shipped ones, each with two versions
    actor = principal_for_user(officer)
    for n in range(10):
        name = f"limits-{n}"
        source = GOOD.replace("assay.loan_limits", f"assay.limits_{n}")
        services.policy_pack_create(actor=actor, name=name, source=source)
        services.policy_pack_version_create(actor=actor, name=name, source=source + "\n# v2\n")
    client = api_client_for(make_user("viewer"))
    client.get("/api/v1/policies/")  # the token's first use is recorded once
    # when
    with django_assert_max_num_queries(5):
        response = client.get("/api/v1/policies/")
    # then every pack is listed with its latest version
    assert response.status_code == 200
    body = response.json()
    packs = body["results"] if isinstance(body, dict) else body
    custom = [p for p in packs if p["name"].startswith("limits-")]
    assert len(custom) == 10
