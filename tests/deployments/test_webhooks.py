# ruff: noqa: F811 - pytest fixtures imported from other modules are parameters here
"""Deployment events reach the team's webhooks: published in the service's transaction, turned into deliveries
by the notifications reaction (run through the real job runner), and sent to a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import pytest

from apps.deployments import services
from apps.notifications import services as notifications
from apps.notifications.models import WebhookDelivery
from tests.deployments.conftest import who
from tests.notifications.conftest import admin_principal, local_allowed, receiver  # noqa: F401 - fixtures
from worker.runner import run_job

pytestmark = pytest.mark.django_db

EVENTS = ["deployment.started", "deployment.halted", "deployment.rolled_back", "deployment.failed"]


def test_a_halted_then_rolled_back_deployment_is_told_to_the_team_s_webhook(
    lab, release, start, manager, officer, team, receiver, local_allowed, react, version
):
    # given the team's webhook on deployment events
    webhook, _ = notifications.webhook_create(actor=who(officer), team=team, url=receiver.url, events=EVENTS)
    # when a rollout is started, halted and rolled back
    deployment = start(release)
    services.deployment_halt(actor=who(manager), deployment_id=deployment.public_id, reason="complaints")
    services.deployment_rollback(actor=who(manager), deployment_id=deployment.public_id, reason="complaints")
    react()
    # then one delivery per event, with the deployment as it was, and no internal ids
    deliveries = list(WebhookDelivery.objects.filter(webhook=webhook).order_by("id"))
    assert [d.event for d in deliveries] == ["deployment.started", "deployment.halted", "deployment.rolled_back"]
    # and a delivery goes out to the receiver
    assert run_job(deliveries[1].job_id) == "succeeded"
    (got,) = receiver.received
    data = got.json["data"]
    assert got.headers["Assay-Event"] == "deployment.halted"
    assert data["deployment"] == str(deployment.public_id) and data["reason"] == "complaints"
    assert data["digest"] == version.sha256 and data["target"] == "lab" and data["state"] == "halted"
    assert "deployment_id" not in data and "team_id" not in data
