"""The webhooks page: who sees it, the create form showing the secret once, the buttons, the nav link."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.audit.models import AuditEvent
from apps.notifications.models import Webhook, WebhookDelivery

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_anonymous_is_sent_to_sign_in():
    response = Client().get("/webhooks/")
    assert response.status_code == 302 and "login" in response["Location"]


def test_without_a_role_the_page_is_not_found_and_there_is_no_nav_link(make_user):
    client = client_for(make_user("viewer"))
    assert client.get("/webhooks/").status_code == 404
    assert b'href="/webhooks/"' not in client.get("/").content


def test_an_officer_creates_a_webhook_and_sees_the_secret_once(officer, receiver, local_allowed, audit_mark):
    # given the credit team's compliance officer on the page
    client = client_for(officer)
    page = client.get("/webhooks/")
    assert page.status_code == 200 and b'href="/webhooks/"' in page.content
    assert b"webhook-create-form" in page.content
    mark = audit_mark()
    # when she creates a webhook
    response = client.post(
        "/webhooks/teams/credit/new/", {"url": receiver.url, "events": ["release.approved", "policy.changed"]}
    )
    # then the answer shows the secret, once, and not cached
    assert response.status_code == 200
    webhook = Webhook.objects.get()
    secret = response.context["secret"]
    assert secret.startswith("whsec_") and secret.encode() in response.content
    assert response["Cache-Control"] == "no-store"
    assert mark.actions(action="webhook.created") == ["webhook.created"]
    again = client.get("/webhooks/")
    assert secret.encode() not in again.content and webhook.url.encode() in again.content


def test_a_refused_url_shows_the_reason_and_keeps_the_form(officer, local_allowed):
    response = client_for(officer).post(
        "/webhooks/teams/credit/new/", {"url": "https://10.0.0.1/x", "events": ["release.approved"]}
    )
    assert response.status_code == 400
    assert b"10.0.0.1 is a private address" in response.content
    assert Webhook.objects.count() == 0


def test_the_buttons_ping_rotate_disable_and_delete(officer, hook, deliver):
    client = client_for(officer)
    webhook, secret = hook
    base = f"/webhooks/{webhook.public_id}"
    # ping: a delivery shows on the page with its state and attempts
    assert client.post(f"{base}/ping/").status_code == 302
    deliver(WebhookDelivery.objects.get(event="ping"))
    page = client.get("/webhooks/").content.decode()
    assert "ping" in page and "badge-run-succeeded" in page and "HTTP 200" in page
    # rotate: the new secret is shown once
    rotated = client.post(f"{base}/rotate/")
    assert rotated.status_code == 200 and rotated.context["secret"] != secret
    # disable, then delete
    client.post(f"{base}/disable/")
    webhook.refresh_from_db()
    assert webhook.active is False
    client.post(f"{base}/delete/")
    assert not Webhook.objects.exists()
    assert [e.action for e in AuditEvent.objects.filter(action__startswith="webhook.").order_by("id")] == [
        "webhook.created",
        "webhook.pinged",
        "webhook.secret_rotated",
        "webhook.updated",
        "webhook.deleted",
    ]


def test_an_auditor_reads_but_has_no_buttons_and_a_post_is_refused(make_user, hook):
    client = client_for(make_user("auditor"))
    webhook, _ = hook
    page = client.get("/webhooks/?team=credit")
    assert page.status_code == 200 and webhook.url.encode() in page.content
    assert b"webhook-create-form" not in page.content and b"Rotate secret" not in page.content
    assert client.post(f"/webhooks/{webhook.public_id}/delete/").status_code == 403
    assert Webhook.objects.filter(pk=webhook.pk).exists()
    assert AuditEvent.objects.filter(action="webhook.deleted", outcome="denied").count() == 1


def test_another_teams_officer_cannot_see_the_webhook(make_user, other_team, hook):
    client = client_for(make_user("compliance_officer", team=other_team))
    webhook, _ = hook
    assert client.get("/webhooks/?team=credit").status_code == 404
    assert client.post(f"/webhooks/{webhook.public_id}/delete/").status_code == 404
    assert Webhook.objects.filter(pk=webhook.pk).exists()
