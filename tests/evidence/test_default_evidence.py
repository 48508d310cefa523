"""A model's default evidence: requested for each version as soon as it is verified, by its author."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.evidence.models import EvidenceRun
from apps.registry import services as registry
from tests.registry.fixtures import job_of

pytestmark = pytest.mark.django_db


def test_a_verified_version_gets_the_models_default_evidence(
    contributor_principal, model, dataset, run, api_client_for, contributor, react
):
    # given a model whose default evidence is a bias report and an explainability report
    response = api_client_for(contributor).patch(
        "/api/v1/models/churn/", {"default_evidence": ["explainability", "bias"]}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["default_evidence"] == ["bias", "explainability"]
    # when a predictions-only version is registered on the scored dataset and verified
    version = registry.version_create(
        actor=contributor_principal, model_name="churn", format="predictions_only", evaluation_dataset_id=dataset.pk
    )
    assert EvidenceRun.objects.count() == 0  # nothing before verification: evidence needs a ready version
    assert run(job_of(version).pk) == "succeeded"
    assert EvidenceRun.objects.count() == 0  # asked for by the evidence app's reaction, in a job of its own
    assert ("event:model_version.verified", "evidence", "succeeded") in react()
    # then its bias report is asked for by its author, and the worker computes it
    [bias] = EvidenceRun.objects.filter(version=version)
    assert bias.kind == "bias" and bias.requested_by_id == contributor.pk
    requested = AuditEvent.objects.get(action="evidence_run.requested", target_id=str(bias.public_id))
    assert requested.actor_id == str(contributor.pk)
    assert run(bias.job_id) == "succeeded"
    # and the explainability report, which a predictions-only version cannot have, is skipped with the reason
    skipped = AuditEvent.objects.get(action="evidence_run.default_skipped")
    assert skipped.outcome == "failed" and skipped.target_id == str(version.pk)
    assert "predictions only" in skipped.reason


def test_unknown_default_evidence_is_refused(api_client_for, contributor, model):
    response = api_client_for(contributor).patch(
        "/api/v1/models/churn/", {"default_evidence": ["tarot"]}, format="json"
    )
    assert response.status_code == 400
    model.refresh_from_db()
    assert model.default_evidence == []


def test_without_default_evidence_nothing_is_requested(contributor_principal, model, dataset, run, react):
    version = registry.version_create(
        actor=contributor_principal, model_name="churn", format="predictions_only", evaluation_dataset_id=dataset.pk
    )
    assert run(job_of(version).pk) == "succeeded"
    react()
    assert EvidenceRun.objects.count() == 0
