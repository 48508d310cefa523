"""The model facts the packs read are set through the registry API, audited, shown on the model page, and read."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.policies.decisions import policy_decide
from tests.factories.policies import compliant_model, compliant_version

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
