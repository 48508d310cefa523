"""Policy pages: list, pack page with source, history, bindings, dry-run rule by rule; uploads and permissions."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.policies.models import PolicyBinding, PolicyPackVersion
from tests.factories.policies import compliant_model, compliant_version
from tests.policies.test_api import GOOD, SYNTAX_ERROR

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_anonymous_is_sent_to_login():
    response = Client().get("/policies/")
    assert response.status_code == 302 and "login" in response["Location"]


def test_no_role_is_refused(make_user):
    assert client_for(make_user()).get("/policies/").status_code == 403


def test_list_and_pack_page_show_source_history_and_nav(make_user):
    client = client_for(make_user("viewer"))
    # when
    listing = client.get("/policies/")
    page = client.get("/policies/eu-ai-act/")
    # then
    assert listing.status_code == 200
    assert b'href="/policies/"' in listing.content  # the nav link
    assert b"/policies/eu-ai-act/" in listing.content
    assert page.status_code == 200
    assert b"package assay.eu_ai_act" in page.content
    assert b"Version history" in page.content
    assert b"Upload a new version" not in page.content  # shipped, and a viewer


def test_dry_run_shows_the_decision_rule_by_rule(make_user):
    # given a high-risk model whose version lacks an oversight note and reports
    model = compliant_model(risk_tier="high", human_oversight="")
    version = compliant_version(model, evidence=False)
    client = client_for(make_user("viewer", team=model.owner_team))
    # when
    response = client.get(
        "/policies/eu-ai-act/", {"model": model.name, "version": version.number, "environment": "production"}
    )
    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="decision-verdict">Blocked' in html
    assert "eu_ai_act.high_risk_human_oversight" in html and "EU AI Act Art. 14" in html
    assert "Not applicable" in html  # e.g. HIPAA's rules
    assert "1 × Compliance officer" in html


def test_dry_run_shows_what_a_passing_fairness_rule_measured_against_its_threshold(make_user):
    from tests.factories.policies import bias_run

    # given a version within its fairness thresholds, its sensitive columns' intersection included
    model = compliant_model(risk_tier="high")
    version = compliant_version(model, evidence=False)
    bias_run(version, dp=0.05, eo=0.02, columns=("sex", "age_band"), intersection_dp=0.068)
    client = client_for(make_user("viewer", team=model.owner_team))
    # when
    html = client.get(
        "/policies/fairness/", {"model": model.name, "version": version.number, "environment": "staging"}
    ).content.decode()
    # then the passing rule's row says the measured value and the threshold
    assert (
        '<div class="rule-measured mono">demographic parity difference 0.068 ≤ 0.1 (worst: sex × age_band)</div>'
        in html
    )


def test_dry_run_of_a_version_out_of_scope_says_so(make_user, other_team):
    version = compliant_version()
    client = client_for(make_user("viewer", team=other_team))
    response = client.get(
        "/policies/security/", {"model": version.model.name, "version": version.number, "environment": "staging"}
    )
    # then a 404, as for any version outside the viewer's scope (and the denial is audited)
    assert response.status_code == 404
    assert b'id="decision"' not in response.content


def test_officer_uploads_versions_and_binds_through_the_pages(make_user, audit_mark):
    client = client_for(make_user("compliance_officer"))
    mark = audit_mark()
    # when a pack with a syntax error is uploaded, the line is shown and nothing stored
    bad = client.post("/policies/new/", {"name": "loan-limits", "source": SYNTAX_ERROR})
    assert bad.status_code == 200 and b"error on line 6" in bad.content
    # when a good one is uploaded
    response = client.post("/policies/new/", {"name": "loan-limits", "source": GOOD, "title": "Loan limits"})
    assert response.status_code == 302 and response["Location"] == "/policies/loan-limits/"
    # and a new version
    client.post("/policies/loan-limits/versions/", {"source": GOOD + "\n# v2\n", "note": "v2"})
    assert PolicyPackVersion.objects.filter(pack__name="loan-limits").count() == 2
    # and a binding to every model in staging
    client.post("/policies/loan-limits/bindings/", {"scope": "all", "environment": "staging"})
    binding = PolicyBinding.objects.get(pack__name="loan-limits")
    assert binding.environment == "staging" and binding.model is None and binding.team is None
    client.post(f"/policies/loan-limits/bindings/{binding.pk}/delete/")
    # then
    assert not PolicyBinding.objects.exists()
    assert mark.actions() == [
        "policy_pack.created",
        "policy_pack.version_created",
        "policy_pack.version_created",
        "policy_binding.created",
        "policy_binding.deleted",
    ]


def test_reviewer_cannot_upload_or_bind(make_user, audit_mark):
    client = client_for(make_user("reviewer"))
    assert client.get("/policies/new/").status_code == 403
    mark = audit_mark()
    assert client.post("/policies/new/", {"name": "loan-limits", "source": GOOD}).status_code == 403
    assert client.post("/policies/security/bindings/", {"scope": "all"}).status_code == 403
    assert ("policy_binding.created", "denied") in [(e.action, e.outcome) for e in mark.new()]
    assert not PolicyBinding.objects.exists()
