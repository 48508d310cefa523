"""Webhook API: anonymous 401, no role 404, wrong role 403, right role 2xx, an audit event after every write,
every denial audited, and the secret shown only at creation and rotation."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.notifications.models import AllowedWebhookHost, Webhook, WebhookDelivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def olga(api_client_for, officer):
    return api_client_for(officer)


@pytest.fixture
def nobody(api_client_for, make_user):
    return api_client_for(make_user())


@pytest.fixture
def auditor(api_client_for, make_user):
    """Sees every team's webhooks, changes none."""
    return api_client_for(make_user("auditor"))


@pytest.fixture
def stranger(api_client_for, make_user, other_team):
    """A compliance officer of another team."""
    return api_client_for(make_user("compliance_officer", team=other_team))


@pytest.fixture
def ada(api_client_for, admin):
    return api_client_for(admin)


@pytest.fixture
def created(olga, receiver, local_allowed):
    response = olga.post(
        "/api/v1/teams/credit/webhooks/",
        {"url": receiver.url, "events": ["release.approved", "evidence.completed"], "description": "CI"},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()


def _url(created, suffix=""):
    return f"/api/v1/webhooks/{created['id']}/{suffix}"


def _denied(mark, action):
    return [e for e in mark.new(outcome="denied") if e.action == action]


def test_creating_a_webhook_shows_its_secret_once_and_audits_without_it(olga, created, audit_mark):
    # then the creation answered with a 256-bit secret, never to be read again
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(secret) >= 6 + 43
    assert created["team"] == "credit" and created["events"] == ["release.approved", "evidence.completed"]
    read = olga.get(_url(created)).json()
    assert "secret" not in read
    listed = olga.get("/api/v1/teams/credit/webhooks/").json()
    assert [w["id"] for w in listed["results"]] == [created["id"]] and "secret" not in listed["results"][0]
    (event,) = AuditEvent.objects.filter(action="webhook.created")
    assert event.actor_name == "olga" and event.target_id == created["id"]
    assert event.after["url"] == created["url"]
    everything = "".join(str(e.before) + str(e.after) + e.reason for e in AuditEvent.objects.all())
    assert secret not in everything
    # and the stored secret is encrypted, not the secret itself
    assert secret not in Webhook.objects.get().secret_encrypted


def test_team_webhooks_permission_triad(anon_client, nobody, auditor, stranger, olga, created, receiver, audit_mark):
    body = {"url": receiver.url, "events": ["release.approved"]}
    path = "/api/v1/teams/credit/webhooks/"
    assert anon_client.get(path).status_code == 401
    assert anon_client.post(path, body, format="json").status_code == 401
    mark = audit_mark()
    assert nobody.get(path).status_code == 404
    assert nobody.post(path, body, format="json").status_code == 404
    assert stranger.get(path).status_code == 404
    assert stranger.post(path, body, format="json").status_code == 404
    assert auditor.get(path).status_code == 200
    assert auditor.post(path, body, format="json").status_code == 403
    assert len(_denied(mark, "webhook.created")) == 3
    assert len(_denied(mark, "webhook.denied")) == 2
    assert Webhook.objects.count() == 1
    assert olga.get(path).status_code == 200


def test_a_refused_target_is_a_400_naming_the_url(olga, local_allowed):
    response = olga.post(
        "/api/v1/teams/credit/webhooks/", {"url": "https://10.1.1.1/x", "events": ["policy.changed"]}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "webhook_target_refused" and "url" in response.json()["errors"]
    bad_event = olga.post(
        "/api/v1/teams/credit/webhooks/", {"url": "https://10.1.1.1/x", "events": ["nope"]}, format="json"
    )
    assert bad_event.status_code == 400


def test_webhook_detail_patch_and_delete(anon_client, nobody, auditor, stranger, olga, created, audit_mark):
    path = _url(created)
    assert anon_client.get(path).status_code == 401
    assert anon_client.patch(path, {"active": False}, format="json").status_code == 401
    assert anon_client.delete(path).status_code == 401
    mark = audit_mark()
    for client in (nobody, stranger):
        assert client.get(path).status_code == 404
        assert client.patch(path, {"active": False}, format="json").status_code == 404
        assert client.delete(path).status_code == 404
    assert auditor.get(path).status_code == 200
    assert auditor.patch(path, {"active": False}, format="json").status_code == 403
    assert auditor.delete(path).status_code == 403
    assert len(_denied(mark, "webhook.updated")) == 3
    assert len(_denied(mark, "webhook.deleted")) == 3
    # when the team's officer changes it
    mark = audit_mark()
    response = olga.patch(path, {"active": False, "events": ["policy.changed"]}, format="json")
    # then
    assert response.status_code == 200 and response.json()["active"] is False
    (event,) = mark.new(action="webhook.updated")
    assert event.before == {"events": ["release.approved", "evidence.completed"], "active": True}
    assert event.after == {"events": ["policy.changed"], "active": False}
    # and deletes it
    assert olga.delete(path).status_code == 204
    assert mark.actions(action="webhook.deleted") == ["webhook.deleted"]
    assert olga.get(path).status_code == 404


def test_rotating_the_secret(anon_client, nobody, auditor, olga, created, audit_mark):
    path = _url(created, "rotate-secret/")
    assert anon_client.post(path).status_code == 401
    mark = audit_mark()
    assert nobody.post(path).status_code == 404
    assert auditor.post(path).status_code == 403
    assert len(_denied(mark, "webhook.secret_rotated")) == 2
    response = olga.post(path)
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    new = response.json()["secret"]
    assert new.startswith("whsec_") and new != created["secret"]
    (event,) = mark.new(action="webhook.secret_rotated", outcome="success")
    assert new not in str(event.after) and created["secret"] not in str(event.after)


def test_ping_and_deliveries_and_redeliver(anon_client, nobody, auditor, olga, created, receiver, deliver, audit_mark):
    test_path = _url(created, "test/")
    assert anon_client.post(test_path).status_code == 401
    mark = audit_mark()
    assert nobody.post(test_path).status_code == 404
    assert auditor.post(test_path).status_code == 403
    assert len(_denied(mark, "webhook.pinged")) == 2
    # when the officer sends a ping and a worker delivers it
    response = olga.post(test_path)
    assert response.status_code == 202
    assert mark.actions(action="webhook.pinged", outcome="success") == ["webhook.pinged"]
    delivery = deliver(WebhookDelivery.objects.get(public_id=response.json()["id"]))
    assert delivery.state == "succeeded"
    assert receiver.received[0].headers["Assay-Event"] == "ping"
    # then the deliveries list shows it with its attempt
    deliveries_path = _url(created, "deliveries/")
    assert anon_client.get(deliveries_path).status_code == 401
    assert nobody.get(deliveries_path).status_code == 404
    assert auditor.get(deliveries_path).status_code == 200
    (listed,) = olga.get(deliveries_path).json()["results"]
    assert listed["state"] == "succeeded" and listed["attempts"][0]["status_code"] == 200
    # and it can be sent again, with the same id
    redeliver = _url(created, f"deliveries/{delivery.public_id}/redeliver/")
    assert anon_client.post(redeliver).status_code == 401
    assert nobody.post(redeliver).status_code == 404
    assert auditor.post(redeliver).status_code == 403
    assert len(_denied(mark, "webhook_delivery.redelivered")) == 2
    response = olga.post(redeliver)
    assert response.status_code == 202 and response.json()["state"] == "pending"
    assert olga.post(redeliver).status_code == 409  # still pending
    assert mark.actions(action="webhook_delivery.redelivered", outcome="success") == ["webhook_delivery.redelivered"]
    delivery = deliver(delivery)
    assert delivery.state == "succeeded" and delivery.attempt_count == 2
    assert [r.headers["Assay-Delivery"] for r in receiver.received] == [str(delivery.public_id)] * 2


def test_allowed_hosts_are_for_admins(anon_client, nobody, olga, auditor, ada, audit_mark):
    path = "/api/v1/webhook-allowed-hosts/"
    body = {"host": "hooks.internal", "allow_http": True, "note": "on-prem CI"}
    assert anon_client.get(path).status_code == 401
    assert anon_client.post(path, body, format="json").status_code == 401
    mark = audit_mark()
    assert nobody.get(path).status_code == 403
    assert nobody.post(path, body, format="json").status_code == 403
    assert olga.post(path, body, format="json").status_code == 403  # a team's officer may not lift the guard
    assert auditor.get(path).status_code == 200
    assert auditor.post(path, body, format="json").status_code == 403
    assert len(_denied(mark, "webhook_host.allowed")) == 3
    # when the admin allows a host
    response = ada.post(path, body, format="json")
    assert response.status_code == 201
    assert ada.post(path, body, format="json").status_code == 409
    (event,) = mark.new(action="webhook_host.allowed", outcome="success")
    assert event.after == {"host": "hooks.internal", "allow_http": True, "note": "on-prem CI"}
    assert [h["host"] for h in ada.get(path).json()["results"]] == ["hooks.internal"]
    # and removes it again
    one = f"{path}{response.json()['id']}/"
    assert anon_client.delete(one).status_code == 401
    assert olga.delete(one).status_code == 403
    assert ada.delete(one).status_code == 204
    assert mark.actions(action="webhook_host.removed", outcome="success") == ["webhook_host.removed"]
    assert not AllowedWebhookHost.objects.exists()
    assert ada.delete(one).status_code == 404


def test_the_deliveries_list_query_count_does_not_grow_with_deliveries(
    olga, hook, team, deliver, django_assert_max_num_queries
):
    from apps.notifications import events

    # given a webhook with 12 delivered events, each with its attempt
    webhook, _ = hook
    for n in range(12):
        events.emit(event="evidence.completed", team_id=team.pk, payload={"n": n})
    for delivery in WebhookDelivery.objects.filter(webhook=webhook):
        deliver(delivery)
    # when the deliveries are listed
    # (token with its grants, the token's last use, webhook, count, page of deliveries, their attempts)
    with django_assert_max_num_queries(6):
        response = olga.get(f"/api/v1/webhooks/{webhook.public_id}/deliveries/")
    # then every delivery is there with its attempt, in a fixed number of queries
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 12 and all(len(d["attempts"]) == 1 for d in results)
