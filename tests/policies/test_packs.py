"""Each shipped pack against versions built to pass and to fail each of its rules, and which packs apply."""

from __future__ import annotations

import pytest

from apps.policies.decisions import PolicyDecision, policy_decide
from apps.rbac import services as rbac
from tests.factories.accounts import UserFactory
from tests.factories.policies import (
    bias_run,
    compliant_model,
    compliant_version,
    mark_false_positive,
    pii_run,
)
from tests.factories.registry import DatasetFactory

PRODUCTION = {"name": "production", "production": True}
STAGING = {"name": "staging", "production": False}
RELEASE = {"change_reference": "CHG-42", "requested_by": ["user", 900001], "emergency": False, "approvals": []}

pytestmark = pytest.mark.django_db


def result(decision: PolicyDecision, rule: str) -> str:
    return next(r["result"] for r in decision.rules if r["rule"] == rule)


def violated(decision: PolicyDecision, rule: str) -> list:
    return [v for v in decision.violations if v.rule == rule]


def missing(decision: PolicyDecision, rule: str) -> list:
    return [m for m in decision.missing_evidence if m["rule"] == rule]


def applied(decision: PolicyDecision) -> set[str]:
    return {p["name"] for p in decision.packs}


# --- applicability --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("facts", "expected", "absent"),
    [
        (
            {"data_categories": ["personal"], "jurisdictions": ["EU"]},
            {"gdpr", "eu-ai-act"},
            {"hipaa", "pci-dss", "sox"},
        ),
        ({"data_categories": ["personal"], "jurisdictions": ["US"]}, set(), {"gdpr", "eu-ai-act", "hipaa"}),
        ({"data_categories": ["health"], "jurisdictions": ["US"]}, {"hipaa"}, {"gdpr", "pci-dss"}),
        ({"data_categories": ["payment_card"], "jurisdictions": ["US"]}, {"pci-dss"}, {"hipaa", "sox"}),
        ({"data_categories": ["financial"], "jurisdictions": ["de"]}, {"sox", "gdpr", "eu-ai-act"}, {"hipaa"}),
        ({"risk_tier": "high", "jurisdictions": [], "fairness_thresholds": {}}, {"fairness"}, {"gdpr"}),
        ({"risk_tier": "minimal", "jurisdictions": [], "fairness_thresholds": {}}, set(), {"fairness"}),
    ],
)
def test_which_packs_apply_follows_categories_jurisdictions_and_risk(facts, expected, absent):
    # given
    version = compliant_version(compliant_model(**facts))
    # when
    decision = policy_decide(version=version, environment=STAGING)
    # then baseline and security always apply, the others by the model's facts
    packs = applied(decision)
    assert {"baseline", "security"} <= packs
    assert expected <= packs
    assert not (absent & packs)
    # rules of packs that do not apply are listed as not applicable
    for rule in decision.rules:
        if rule["pack"] in absent:
            assert rule["result"] == "not_applicable"


# --- GDPR -----------------------------------------------------------------------------------


def test_gdpr_passes_a_documented_model():
    version = compliant_version(compliant_model(risk_tier="high"))
    decision = policy_decide(version=version, environment=PRODUCTION)
    for rule in (
        "gdpr.art22_explainability",
        "gdpr.art22_human_review",
        "gdpr.art5_minimisation",
        "gdpr.art35_dpia",
        "gdpr.art30_records",
    ):
        assert result(decision, rule) == "pass", decision.rules


def test_gdpr_art22_needs_an_explainability_report_and_a_human_review_path():
    # given an automated-decision model without a review path, and a version without an explainability report
    version = compliant_version(compliant_model(human_review_path=""), evidence=False)
    bias_run(version)
    # when
    decision = policy_decide(version=version, environment=STAGING)
    # then
    assert not decision.allow
    assert missing(decision, "gdpr.art22_explainability")[0]["kind"] == "explainability"
    v = violated(decision, "gdpr.art22_human_review")[0]
    assert v.clause == "GDPR Art. 22(3)" and "GDPR Art. 22(3)" in v.message and v.severity == "blocking"


def test_gdpr_art22_does_not_apply_without_automated_decisions():
    version = compliant_version(compliant_model(automated_decisions=False, human_review_path=""), evidence=False)
    decision = policy_decide(version=version, environment=STAGING)
    assert result(decision, "gdpr.art22_explainability") == "not_applicable"
    assert result(decision, "gdpr.art22_human_review") == "not_applicable"


def test_gdpr_art5_refuses_direct_identifiers_among_features_unless_justified():
    # given a training dataset whose feature column holds e-mail addresses
    model = compliant_model()
    version = compliant_version(model)
    leaky = DatasetFactory(owner_team=model.owner_team, status="ready", sha256="b" * 64)
    version.training_datasets.add(leaky)
    pii_run(leaky, [("email", "feature", "EMAIL_ADDRESS"), ("customer_id", "identifier", "PERSON")])
    # when
    decision = policy_decide(version=version, environment=STAGING)
    # then
    v = violated(decision, "gdpr.art5_minimisation")[0]
    assert v.severity == "blocking" and "email (EMAIL_ADDRESS)" in v.message and "customer_id" not in v.message
    # when a justification is recorded, it is a warning
    model.minimisation_justification = "E-mail domain is the fraud signal; hashed at inference"
    model.save()
    decision = policy_decide(version=version, environment=STAGING)
    assert violated(decision, "gdpr.art5_minimisation")[0].severity == "warning"
    assert result(decision, "gdpr.art5_minimisation") == "warning"
    assert decision.allow


def test_gdpr_art5_ignores_findings_marked_false_positive():
    model = compliant_model()
    version = compliant_version(model)
    ds = DatasetFactory(owner_team=model.owner_team, status="ready")
    version.training_datasets.add(ds)
    run = pii_run(ds, [("notes", "feature", "PERSON")])
    mark_false_positive(run, "notes:PERSON")
    decision = policy_decide(version=version, environment=STAGING)
    assert result(decision, "gdpr.art5_minimisation") == "pass"


def test_gdpr_art35_needs_a_dpia_for_high_risk_processing():
    version = compliant_version(compliant_model(dpia_reference="", automated_decisions=False, human_review_path=""))
    assert result(policy_decide(version=version, environment=STAGING), "gdpr.art35_dpia") == "not_applicable"
    version = compliant_version(compliant_model(dpia_reference="", data_categories=["personal", "health"]))
    decision = policy_decide(version=version, environment=STAGING)
    v = violated(decision, "gdpr.art35_dpia")[0]
    assert v.clause == "GDPR Art. 35(1)" and "impact assessment" in v.message


def test_gdpr_art30_needs_the_purpose_recorded():
    version = compliant_version(compliant_model(intended_use=""))
    decision = policy_decide(version=version, environment=STAGING)
    assert "GDPR Art. 30(1)(b)" in violated(decision, "gdpr.art30_records")[0].message


# --- HIPAA ----------------------------------------------------------------------------------


def health_model(**kw):
    return compliant_model(data_categories=["health"], jurisdictions=["US"], **kw)


def test_hipaa_passes_scanned_data_named_teams_and_an_enabled_trail():
    decision = policy_decide(version=compliant_version(health_model()), environment=PRODUCTION)
    for rule in ("hipaa.phi_scan", "hipaa.access_restricted", "hipaa.audit_trail"):
        assert result(decision, rule) == "pass"
    assert decision.input["audit"]["enabled"] is True


def test_hipaa_needs_a_scan_of_every_dataset_with_no_unresolved_findings():
    # given an evaluation dataset never scanned, and a training dataset with PHI
    model = health_model()
    version = compliant_version(model)
    unscanned = DatasetFactory(owner_team=model.owner_team, status="ready", name="eval-unscanned")
    version.evaluation_dataset = unscanned
    version.save()
    phi = DatasetFactory(owner_team=model.owner_team, status="ready", name="notes-raw")
    version.training_datasets.add(phi)
    run = pii_run(phi, [("notes", "text", "PERSON"), ("mrn", "identifier", "US_SSN")])
    # when
    decision = policy_decide(version=version, environment=STAGING)
    # then
    assert missing(decision, "hipaa.phi_scan")[0]["subject"] == "dataset eval-unscanned"
    message = violated(decision, "hipaa.phi_scan")[0].message
    assert "notes-raw has 2 unresolved" in message and "164.514" in message
    # when one finding is a false positive, one remains
    mark_false_positive(run, "notes:PERSON")
    message = violated(policy_decide(version=version, environment=STAGING), "hipaa.phi_scan")[0].message
    assert "1 unresolved PHI finding(s) (mrn:US_SSN)" in message


def test_hipaa_accepts_a_scrubbed_dataset_in_place_of_the_raw_one():
    model = health_model()
    version = compliant_version(model)
    raw = DatasetFactory(owner_team=model.owner_team, status="ready", name="raw")
    pii_run(raw, [("notes", "text", "PERSON")])
    scrubbed = DatasetFactory(owner_team=model.owner_team, status="ready", name="raw (scrubbed)", source=raw)
    version.training_datasets.add(scrubbed)
    decision = policy_decide(version=version, environment=STAGING)
    assert result(decision, "hipaa.phi_scan") == "pass"


def test_hipaa_refuses_broad_global_read_access(system):
    version = compliant_version(health_model())
    rbac.role_grant(actor=system, subject=UserFactory(username="everyone-viewer"), role="viewer")
    decision = policy_decide(version=version, environment=STAGING)
    v = violated(decision, "hipaa.access_restricted")[0]
    assert "everyone-viewer" in v.message and "164.312(a)(1)" in v.message


def test_hipaa_needs_the_audit_trail_enabled():
    from tests.support.db import bypass_audit_triggers

    version = compliant_version(health_model())
    with bypass_audit_triggers():  # SQLite: triggers dropped inside; PostgreSQL: replica role keeps them installed
        decision = policy_decide(version=version, environment=STAGING)
    from django.db import connection

    if connection.vendor == "sqlite":
        assert result(decision, "hipaa.audit_trail") == "fail"
    else:
        assert result(decision, "hipaa.audit_trail") == "pass"


# --- PCI-DSS --------------------------------------------------------------------------------


def test_pci_refuses_card_numbers_in_training_data_and_needs_scans():
    model = compliant_model(data_categories=["payment_card"], jurisdictions=["US"])
    version = compliant_version(model)
    assert result(policy_decide(version=version, environment=STAGING), "pci_dss.no_pan") == "pass"
    cards = DatasetFactory(owner_team=model.owner_team, status="ready", name="txns")
    version.training_datasets.add(cards)
    assert missing(policy_decide(version=version, environment=STAGING), "pci_dss.no_pan")[0]["kind"] == "pii_scan"
    pii_run(cards, [("pan", "feature", "CREDIT_CARD")])
    v = violated(policy_decide(version=version, environment=STAGING), "pci_dss.no_pan")[0]
    assert "txns holds primary account numbers in pan" in v.message and v.clause.startswith("PCI DSS v4.0")


# --- SOX ------------------------------------------------------------------------------------


def test_sox_production_needs_a_change_reference():
    version = compliant_version(compliant_model(data_categories=["financial"], jurisdictions=["US"]))
    assert (
        result(policy_decide(version=version, environment=PRODUCTION, release=RELEASE), "sox.change_reference")
        == "pass"
    )
    no_ref = dict(RELEASE, change_reference="  ")
    decision = policy_decide(version=version, environment=PRODUCTION, release=no_ref)
    assert "SOX Sec. 404" in violated(decision, "sox.change_reference")[0].message
    assert result(policy_decide(version=version, environment=STAGING, release=no_ref), "sox.change_reference") == (
        "not_applicable"
    )
    # before any release request (the gate, a dry-run) there is nothing to carry a reference yet
    assert result(policy_decide(version=version, environment=PRODUCTION), "sox.change_reference") == "not_applicable"


@pytest.mark.parametrize(
    ("requester", "approvers", "why"),
    [
        ("author", [], "the requester is the version's author"),
        (900001, [900001], "the requester approved their own release"),
        (900001, ["author"], "the version's author approved it"),
        (900001, [900002, 900002], "one person approved more than once"),
    ],
)
def test_sox_requester_author_and_approvers_are_distinct(requester, approvers, why):
    author = UserFactory()
    version = compliant_version(compliant_model(data_categories=["financial"], jurisdictions=["US"]), created_by=author)

    def key(who):
        return ["user", author.pk if who == "author" else who]

    release = dict(
        RELEASE,
        requested_by=key(requester),
        approvals=[{"person": key(a), "roles": ["reviewer"], "decision": "approve"} for a in approvers],
    )
    decision = policy_decide(version=version, environment=PRODUCTION, release=release)
    assert any(why in v.message for v in violated(decision, "sox.segregation_of_duties"))
    ok = dict(RELEASE, approvals=[{"person": ["user", 900002], "roles": ["reviewer"], "decision": "approve"}])
    assert result(policy_decide(version=version, environment=PRODUCTION, release=ok), "sox.segregation_of_duties") == (
        "pass"
    )


# --- EU AI Act ------------------------------------------------------------------------------


def test_eu_ai_act_never_releases_unacceptable_risk():
    decision = policy_decide(version=compliant_version(compliant_model(risk_tier="unacceptable")), environment=STAGING)
    assert not decision.allow
    assert violated(decision, "eu_ai_act.prohibited_practice")[0].clause == "EU AI Act Art. 5"


def test_eu_ai_act_high_risk_passes_with_card_reports_oversight_and_asks_a_compliance_officer():
    decision = policy_decide(version=compliant_version(compliant_model(risk_tier="high")), environment=PRODUCTION)
    assert decision.allow, decision.violations
    for rule in (
        "eu_ai_act.high_risk_model_card",
        "eu_ai_act.high_risk_bias_report",
        "eu_ai_act.high_risk_explainability",
        "eu_ai_act.high_risk_human_oversight",
    ):
        assert result(decision, rule) == "pass"
    roles = {a.role: a.count for a in decision.required_approvals}
    assert roles == {"reviewer": 1, "compliance_officer": 1}


def test_eu_ai_act_high_risk_fails_each_missing_part():
    # given a high-risk model without limitations or an oversight note, a version without metrics or reports
    model = compliant_model(risk_tier="high", limitations="", human_oversight="")
    version = compliant_version(model, evidence=False, metrics={}, model_card={})
    # when
    decision = policy_decide(version=version, environment=PRODUCTION)
    # then
    card = violated(decision, "eu_ai_act.high_risk_model_card")[0]
    assert "limitations" in card.message and "performance metrics" in card.message
    assert "intended use" not in card.message
    assert violated(decision, "eu_ai_act.high_risk_human_oversight")[0].clause == "EU AI Act Art. 14"
    assert missing(decision, "eu_ai_act.high_risk_bias_report")[0]["kind"] == "bias"
    assert missing(decision, "eu_ai_act.high_risk_explainability")[0]["kind"] == "explainability"
    assert result(decision, "eu_ai_act.high_risk_bias_report") == "fail"


def test_eu_ai_act_limited_risk_rules_do_not_apply():
    decision = policy_decide(version=compliant_version(compliant_model(human_oversight="")), environment=PRODUCTION)
    assert result(decision, "eu_ai_act.high_risk_human_oversight") == "not_applicable"
    assert "compliance_officer" not in {a.role for a in decision.required_approvals}


# --- Fairness -------------------------------------------------------------------------------


def test_fairness_thresholds_per_model():
    # given a version whose bias report shows dp 0.15 and eo 0.04
    model = compliant_model(fairness_thresholds={"demographic_parity_difference": 0.2})
    version = compliant_version(model, evidence=False)
    bias_run(version, dp=0.15, eo=0.04)
    # when the model allows 0.2
    decision = policy_decide(version=version, environment=STAGING)
    # then both pass (equalized odds uses the default 0.1)
    assert result(decision, "fairness.demographic_parity") == "pass"
    assert result(decision, "fairness.equalized_odds") == "pass"
    # when the model tightens demographic parity to 0.1
    model.fairness_thresholds = {"demographic_parity_difference": 0.1, "equalized_odds_difference": 0.03}
    model.save()
    decision = policy_decide(version=version, environment=STAGING)
    dp = violated(decision, "fairness.demographic_parity")[0]
    assert "over sex is 0.15, above the threshold 0.1" in dp.message
    assert violated(decision, "fairness.equalized_odds")[0].severity == "blocking"


def test_fairness_judges_the_intersection_of_the_sensitive_columns_too():
    # given a report fair by sex and by age band on their own (0.068) but not to their intersection (0.148)
    model = compliant_model(fairness_thresholds={"demographic_parity_difference": 0.1})
    version = compliant_version(model, evidence=False)
    bias_run(version, dp=0.068, eo=0.04, columns=("sex", "age_band"), intersection_dp=0.148)
    # when
    decision = policy_decide(version=version, environment=STAGING)
    # then the demographic parity rule fails on the intersection alone, naming it and its threshold
    assert not decision.allow
    [dp] = violated(decision, "fairness.demographic_parity")
    assert "over sex × age_band is 0.148, above the threshold 0.1" in dp.message
    row = next(r for r in decision.rules if r["rule"] == "fairness.demographic_parity")
    assert row["result"] == "fail" and row["measured"] == 0.148 and row["threshold"] == 0.1
    # and the passing rule says what it measured against which threshold
    eo = next(r for r in decision.rules if r["rule"] == "fairness.equalized_odds")
    assert eo["result"] == "pass" and eo["measured"] == 0.04 and eo["threshold"] == 0.1
    assert eo["detail"].startswith("equalized odds difference 0.04 ≤ 0.1 (worst: ")
    assert decision.as_dict()["rules"] == [dict(r) for r in decision.rules]


def test_a_passing_fairness_rule_carries_its_measured_value_and_threshold():
    # given a report within every threshold, intersection included
    model = compliant_model(fairness_thresholds={"demographic_parity_difference": 0.1})
    version = compliant_version(model, evidence=False)
    bias_run(version, dp=0.05, eo=0.02, columns=("sex", "age_band"), intersection_dp=0.068)
    # when
    decision = policy_decide(version=version, environment=STAGING)
    # then
    dp = next(r for r in decision.rules if r["rule"] == "fairness.demographic_parity")
    assert dp["result"] == "pass" and dp["message"] == ""
    assert (dp["measured"], dp["threshold"]) == (0.068, 0.1)
    assert dp["detail"] == "demographic parity difference 0.068 ≤ 0.1 (worst: sex × age_band)"
    # rules that measure nothing carry no such fields
    report = next(r for r in decision.rules if r["rule"] == "fairness.bias_report")
    assert "measured" not in report and "detail" not in report


def test_fairness_needs_a_bias_report():
    version = compliant_version(compliant_model(), evidence=False)
    decision = policy_decide(version=version, environment=STAGING)
    assert missing(decision, "fairness.bias_report")[0]["kind"] == "bias"
    assert not decision.allow
