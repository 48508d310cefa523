# ruff: noqa: F811 - pytest fixtures imported from other modules are parameters here
"""A finished evidence run notifies its team's webhooks: evidence.completed from a real worker run, evidence.failed."""

from __future__ import annotations

import json

import pytest

from apps.evidence import runs
from apps.evidence import services as evidence
from apps.notifications.models import WebhookDelivery
from tests.evidence.conftest import dataset, make_dataset, version  # noqa: F401 (fixtures)
from tests.registry.fixtures import contributor, contributor_principal, model  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


def test_a_completed_bias_report_is_delivered_to_the_team(
    hook,
    contributor_principal,
    version,
    run,
    deliver,
    receiver,
    react,  # noqa: F811
):
    # given a bias report requested on the version
    requested = evidence.evidence_request(actor=contributor_principal, kind="bias", version=version)
    # when a worker computes it, and the reactions to its success run
    assert run(requested.run.job_id) == "succeeded"
    assert WebhookDelivery.objects.count() == 0  # the delivery is written by the notifications reaction
    assert ("event:evidence_run.succeeded", "notifications", "succeeded") in react()
    # then one evidence.completed delivery names the run, its kind, subject and page
    delivery = WebhookDelivery.objects.get(event="evidence.completed")
    delivery = deliver(delivery)
    assert delivery.state == "succeeded"
    data = receiver.received[-1].json["data"]
    assert data["run"] == str(requested.run.public_id)
    assert data["kind"] == "bias" and data["status"] == "succeeded" and data["team"] == "credit"
    assert data["subject"]["type"] == "model_version"
    assert (data["subject"]["model"], data["subject"]["version"]) == ("churn", 1)
    assert data["subject"]["dataset"]["id"] == version.evaluation_dataset_id
    assert data["url"] == f"/evidence/{requested.run.public_id}/"


def test_a_failed_run_emits_evidence_failed_with_its_reason(hook, contributor_principal, version, settings, react):  # noqa: F811
    settings.ASSAY_PUBLIC_URL = "https://assay.example.com/"
    requested = evidence.evidence_request(actor=contributor_principal, kind="bias", version=version)
    # when the run fails
    assert runs.evidence_run_fail(run_id=requested.run.pk, reason="labels are not binary")
    react()
    # then
    (delivery,) = WebhookDelivery.objects.filter(event="evidence.failed")
    data = json.loads(delivery.body)["data"]
    assert data["status"] == "failed" and data["reason"] == "labels are not binary"
    assert data["url"] == f"https://assay.example.com/evidence/{requested.run.public_id}/"
    # and failing it again emits nothing more
    assert not runs.evidence_run_fail(run_id=requested.run.pk, reason="again")
    assert react() == []
    assert WebhookDelivery.objects.filter(event="evidence.failed").count() == 1
