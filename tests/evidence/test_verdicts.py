"""Evidence shows its verdict, not only that it ran: bias pass/fail per attribute and intersection,
unresolved PII findings on badges, mandatory review verdicts with their reviewer, declared against
measured accuracy, and downloads that say what they belong to."""

from __future__ import annotations

import pytest

from apps.evidence import services
from apps.evidence.models import EvidenceRun, FindingReview
from apps.registry.models import RegisteredModel
from tests.evidence.conftest import read_download
from tests.factories.policies import mark_false_positive, pii_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def web(client, contributor):
    client.force_login(contributor)
    return client


@pytest.fixture
def report(contributor_principal, version, run) -> EvidenceRun:
    """A real bias report on 'churn' v1 (sex, region and sex × region), computed by a worker."""
    evidence = services.evidence_request(actor=contributor_principal, kind="bias", version=("churn", 1)).run
    assert run(evidence.job_id) == "succeeded"
    evidence.refresh_from_db()
    assert evidence.status == "succeeded", evidence.error
    return evidence


def _dp(summary: dict, report: dict) -> float:
    return report["disparities"]["demographic_parity_difference"]["value"]


# --- bias verdicts ---------------------------------------------------------------------------


def test_a_bias_report_states_pass_or_fail_per_attribute_and_their_intersection(
    web, api_client_for, contributor, report
):
    # given a threshold between what each column shows on its own and what their intersection shows
    summary = report.summary
    single = max(_dp(summary, r) for r in summary["by_column"].values())
    crossed = _dp(summary, summary["intersection"])
    assert crossed > single  # the fixture's data make the intersection the worst
    limit = round((single + crossed) / 2, 4)
    RegisteredModel.objects.filter(name="churn").update(
        fairness_thresholds={"demographic_parity_difference": limit, "equalized_odds_difference": 1.0}
    )
    # when the API is asked for the run
    body = api_client_for(contributor).get(f"/api/v1/evidence/{report.public_id}/").json()
    # then each attribute and the intersection has a verdict per metric, against the model's thresholds
    verdicts = {(v["attribute"], v["metric"]): v for v in body["verdicts"]}
    assert set(verdicts) == {
        (a, m)
        for a in ("sex", "region", "sex × region")
        for m in ("demographic_parity_difference", "equalized_odds_difference")
    }
    for column in ("sex", "region"):
        verdict = verdicts[(column, "demographic_parity_difference")]
        assert verdict["result"] == "pass" and verdict["threshold"] == limit and not verdict["intersection"]
        assert verdict["measured"] == _dp(summary, summary["by_column"][column])
    crossing = verdicts[("sex × region", "demographic_parity_difference")]
    assert crossing["result"] == "fail" and crossing["intersection"] and crossing["columns"] == ["sex", "region"]
    assert crossing["measured"] == crossed and crossing["text"] == (
        f"demographic parity difference {crossed:.3f} > {limit:g}"
    )
    assert all(v["result"] == "pass" for (_, m), v in verdicts.items() if m == "equalized_odds_difference")
    assert body["outcome"] == {"text": "Bias: 1 of 6 checks fail", "state": "failed"}
    # and the run's page shows the same verdicts, the failing row marked
    page = web.get(f"/evidence/{report.public_id}/").content.decode()
    assert 'id="bias-verdicts"' in page and "1 of 6 fail" in page
    assert 'class="verdict-fail" data-attribute="sex × region" data-metric="demographic_parity_difference"' in page
    assert page.count('class="verdict-pass"') == 5
    # and the version's evidence list carries the verdict on its badge, not only "Succeeded"
    listed = web.get("/models/churn/versions/1/").content.decode()
    assert "Bias: 1 of 6 checks fail" in listed


def test_thresholds_the_model_does_not_set_default_to_one_tenth(api_client_for, contributor, report):
    RegisteredModel.objects.filter(name="churn").update(fairness_thresholds={})
    body = api_client_for(contributor).get(f"/api/v1/evidence/{report.public_id}/").json()
    assert {v["threshold"] for v in body["verdicts"]} == {0.1}
    assert all(v["threshold_is_default"] for v in body["verdicts"])
    for v in body["verdicts"]:
        assert v["result"] == ("pass" if v["measured"] <= 0.1 else "fail")


# --- PII badges and reviews -------------------------------------------------------------------


def test_a_pii_scan_badge_counts_its_unresolved_findings(web, dataset):
    # given a scan of the dataset with three findings
    findings = [("email", "feature", "EMAIL_ADDRESS"), ("phone", "feature", "PHONE_NUMBER")]
    scan = pii_run(dataset, [*findings, ("card", "feature", "CREDIT_CARD")])
    # then the dataset's evidence list says how many are unresolved
    page = web.get(f"/datasets/{dataset.pk}/").content.decode()
    assert "PII: 3 unresolved" in page
    # when one is marked a false positive
    mark_false_positive(scan, "email:EMAIL_ADDRESS")
    # then the badge counts the rest, on the list and on the run's own page
    assert "PII: 2 unresolved" in web.get(f"/datasets/{dataset.pk}/").content.decode()
    assert 'id="run-outcome">PII: 2 unresolved' in web.get(f"/evidence/{scan.public_id}/").content.decode()
    # and once none is left it says so
    mark_false_positive(scan, "phone:PHONE_NUMBER")
    mark_false_positive(scan, "card:CREDIT_CARD")
    assert "PII: all resolved" in web.get(f"/datasets/{dataset.pk}/").content.decode()


def test_a_review_verdict_has_no_default_and_shows_who_gave_it_and_why(
    client, make_user, api_client_for, team, dataset
):
    scan = pii_run(dataset, [("email", "feature", "EMAIL_ADDRESS")])
    reviewer = make_user("reviewer", team=team)
    reviewer.first_name, reviewer.last_name = "Rita", "Reviewer"
    reviewer.save()
    client.force_login(reviewer)
    # given the form offers no preselected verdict
    page = client.get(f"/evidence/{scan.public_id}/").content.decode()
    assert '<option value="" selected disabled>Choose a verdict…</option>' in page
    assert 'name="verdict" aria-label="Verdict" required' in page
    # when the form is posted without one
    response = client.post(
        f"/evidence/{scan.public_id}/reviews/", {"finding": "email:EMAIL_ADDRESS", "reason": "Looks fake"}, follow=True
    )
    # then it is refused in words and nothing is recorded
    assert "verdict: required; choose false_positive or confirmed" in response.content.decode()
    assert not FindingReview.objects.exists()
    # and the API refuses it too, as problem+json naming the field
    api = api_client_for(reviewer)
    refused = api.post(
        f"/api/v1/evidence/{scan.public_id}/reviews/",
        {"finding": "email:EMAIL_ADDRESS", "reason": "Looks fake"},
        format="json",
    )
    assert refused.status_code == 400 and refused["Content-Type"] == "application/problem+json"
    assert "Choose a verdict" in refused.content.decode() and "verdict" in refused.json()["errors"]
    assert not FindingReview.objects.exists()
    # when a verdict is chosen
    saved = api.post(
        f"/api/v1/evidence/{scan.public_id}/reviews/",
        {"finding": "email:EMAIL_ADDRESS", "verdict": "false_positive", "reason": "Seeded test addresses"},
        format="json",
    )
    assert saved.status_code == 201 and saved.json()["reviewer_name"] == "Rita Reviewer"
    # then the page shows the verdict with the reviewer's name and reason beside it
    page = client.get(f"/evidence/{scan.public_id}/").content.decode()
    assert f'<strong class="verdict-reviewer">Rita Reviewer ({reviewer.username})</strong>' in page
    assert '<span class="verdict-reason">Seeded test addresses</span>' in page


# --- declared against measured accuracy ------------------------------------------------------


def test_a_version_whose_declared_accuracy_is_far_from_the_measured_one_is_flagged(
    web, api_client_for, contributor, version, report, settings
):
    measured = report.summary["overall"]["accuracy"]
    api = api_client_for(contributor)
    # given CI declared an accuracy 0.2 above what the evaluation set shows
    version.metrics = {"accuracy": round(min(1.0, measured + 0.2), 4)}
    version.save(update_fields=["metrics"])
    # then the version's API and page flag it
    check = api.get("/api/v1/models/churn/versions/1/").json()["accuracy_check"]
    assert check["mismatch"] is True and check["measured"] == measured and check["run"] == str(report.public_id)
    assert check["tolerance"] == 0.05 and check["difference"] == pytest.approx(measured - version.metrics["accuracy"])
    page = web.get("/models/churn/versions/1/").content.decode()
    assert 'id="accuracy-check"' in page and "Accuracy mismatch:" in page
    # given a declared accuracy within the tolerance
    version.metrics = {"accuracy": round(measured + 0.03, 4)}
    version.save(update_fields=["metrics"])
    assert api.get("/api/v1/models/churn/versions/1/").json()["accuracy_check"]["mismatch"] is False
    assert "Accuracy confirmed:" in web.get("/models/churn/versions/1/").content.decode()
    # and a tighter tolerance (ASSAY_METRIC_TOLERANCE) flags the same numbers
    settings.ASSAY_METRIC_TOLERANCE = 0.01
    assert api.get("/api/v1/models/churn/versions/1/").json()["accuracy_check"]["mismatch"] is True
    # and a version that declares no accuracy is not judged
    version.metrics = {"auc": 0.8}
    version.save(update_fields=["metrics"])
    assert api.get("/api/v1/models/churn/versions/1/").json()["accuracy_check"] is None
    assert 'id="accuracy-check"' not in web.get("/models/churn/versions/1/").content.decode()


# --- downloads -------------------------------------------------------------------------------


def test_a_pii_findings_table_names_its_run_and_dataset_in_its_preamble(
    contributor_principal, api_client_for, contributor, dataset, run
):
    scan = services.evidence_request(actor=contributor_principal, kind="pii_scan", dataset_id=dataset.pk).run
    assert run(scan.job_id) == "succeeded"
    scan.refresh_from_db()
    [listed] = api_client_for(contributor).get(f"/api/v1/evidence/{scan.public_id}/").json()["files"]
    response = api_client_for(contributor).get(listed["url"])
    preamble, rows = read_download(b"".join(response.streaming_content))
    assert preamble["run"] == str(scan.public_id) and preamble["kind"] == "pii_scan"
    assert preamble["model"].startswith("none") and preamble["version"] == "none"
    assert preamble["dataset"] == f"scored (id {dataset.pk})" and preamble["dataset sha256"] == dataset.sha256
    assert preamble["summary schema"] == "assay.pii/v1"
    assert isinstance(rows, list)
