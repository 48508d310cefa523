"""The model facts the packs read are set through the registry API, audited, shown on the model page, and read."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.policies.decisions import policy_decide
from apps.registry.models import RegisteredModel
from tests.factories.policies import bias_run, compliant_model, compliant_version, explain_run

pytestmark = pytest.mark.django_db


def test_a_contributor_sets_the_facts_and_the_decision_follows(make_user, api_client_for, audit_mark):
    # given a high-risk EU model without an oversight note
    model = compliant_model(risk_tier="high", human_oversight="", dpia_reference="")
    version = compliant_version(model)
    client = api_client_for(make_user("contributor", team=model.owner_team))
    before = policy_decide(version=version, environment={"name": "production", "production": True})
    assert {v.rule for v in before.violations} >= {"eu_ai_act.high_risk_human_oversight", "gdpr.art35_dpia"}
    mark = audit_mark()
    # when
    response = client.patch(
        f"/api/v1/models/{model.name}/",
        {
            "human_oversight": "Credit officers review declines daily",
            "dpia_reference": "DPIA-7",
            "fairness_thresholds": {"demographic_parity_difference": 0.08},
        },
        format="json",
    )
    # then
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["human_oversight"] == "Credit officers review declines daily"
    assert body["fairness_thresholds"] == {"demographic_parity_difference": 0.08}
    event = mark.new()[-1]
    assert event.action == "model.updated" and event.after["dpia_reference"] == "DPIA-7"
    after = policy_decide(version=version, environment={"name": "production", "production": True})
    assert after.allow, after.violations
    assert after.input["model"]["fairness_thresholds"] == {"demographic_parity_difference": 0.08}
    page = Client()
    page.force_login(make_user("viewer", team=model.owner_team))
    assert "DPIA-7" in page.get(f"/models/{model.name}/").content.decode()


def test_unknown_fairness_metrics_are_refused(make_user, api_client_for):
    model = compliant_model()
    client = api_client_for(make_user("contributor", team=model.owner_team))
    response = client.patch(f"/api/v1/models/{model.name}/", {"fairness_thresholds": {"accuracy": 0.1}}, format="json")
    assert response.status_code == 400
    assert "unknown metric" in response.json()["detail"]


# ---------------------------------------------------------------------------------------------
# The gated team cannot loosen what its gate reads (docs/governance-facts.md)

PRODUCTION = {"name": "production", "production": True}


def test_the_team_alone_cannot_reclassify_a_prohibited_biometric_model(make_user, api_client_for, audit_mark):
    # given the demo's emotion-recognition model: unacceptable risk, biometric data, blocked in every environment
    model = compliant_model(
        risk_tier="unacceptable", data_categories=["biometric", "personal"], automated_decisions=False
    )
    version = compliant_version(model)
    assert "eu_ai_act.prohibited_practice" in {
        v.rule for v in policy_decide(version=version, environment=PRODUCTION).violations
    }
    contributor = api_client_for(make_user("contributor", team=model.owner_team))
    # when its contributor reclassifies it as minimal with no data categories
    response = contributor.patch(
        f"/api/v1/models/{model.name}/",
        {"risk_tier": "minimal", "data_categories": [], "reason": "It only counts smiles"},
        format="json",
    )
    # then nothing the gate reads changed: the change waits for a compliance officer
    assert response.status_code == 202, response.json()
    assert sorted(response.json()["update"]["pending"]) == ["data_categories", "risk_tier"]
    model.refresh_from_db()
    assert (model.risk_tier, model.data_categories) == ("unacceptable", ["biometric", "personal"])
    decision = policy_decide(version=version, environment=PRODUCTION)
    assert not decision.allow
    assert "eu_ai_act.prohibited_practice" in {v.rule for v in decision.violations}
    assert decision.input["model"]["risk_tier"] == "unacceptable"
    # and a reviewer cannot approve it instead of a compliance officer
    change = response.json()["update"]["facts_change"]
    reviewer = api_client_for(make_user("reviewer"))
    assert reviewer.post(f"{change['url']}approve/", {"reason": "ok"}, format="json").status_code == 403
    assert RegisteredModel.objects.get(pk=model.pk).risk_tier == "unacceptable"


def test_raising_its_own_fairness_threshold_does_not_lift_a_fairness_block(make_user, api_client_for):
    # given a high-risk model whose bias report exceeds its thresholds
    model = compliant_model(risk_tier="high")
    version = compliant_version(model, evidence=False)
    bias_run(version, dp=0.18, eo=0.04)
    explain_run(version)
    blocked = policy_decide(version=version, environment=PRODUCTION)
    assert "fairness.demographic_parity" in {v.rule for v in blocked.violations}
    contributor = api_client_for(make_user("contributor", team=model.owner_team))
    # when the team raises its own threshold above the measured disparity
    response = contributor.patch(
        f"/api/v1/models/{model.name}/",
        {"fairness_thresholds": {"demographic_parity_difference": 0.2, "equalized_odds_difference": 0.1}}
        | {"reason": "0.18 is acceptable here"},
        format="json",
    )
    # then the block stays until a compliance officer approves
    assert response.status_code == 202, response.json()
    assert response.json()["update"]["pending"] == ["fairness_thresholds"]
    still = policy_decide(version=version, environment=PRODUCTION)
    assert "fairness.demographic_parity" in {v.rule for v in still.violations}
    officer = api_client_for(make_user("compliance_officer"))
    change = response.json()["update"]["facts_change"]
    assert officer.post(f"{change['url']}approve/", {"reason": "Justified in FA-9"}, format="json").status_code == 200
    lifted = policy_decide(version=version, environment=PRODUCTION)
    assert "fairness.demographic_parity" not in {v.rule for v in lifted.violations}
