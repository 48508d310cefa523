"""The SSRF guard: private, loopback, link-local, unique-local and IPv4-mapped targets and plain http are refused."""

from __future__ import annotations

import pytest

from apps.core.errors import ValidationFailed
from apps.notifications import services, targets
from apps.notifications.models import Webhook

pytestmark = pytest.mark.django_db

EVENTS = ["release.approved"]


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.8/hook",
        "https://192.168.1.20/hook",
        "https://172.16.0.1/hook",
        "https://127.0.0.1/hook",
        "https://2130706433/hook",  # 127.0.0.1 spelt as one number
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hook",
        "https://[fd12:3456::1]/hook",
        "https://[fe80::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[::ffff:10.0.0.1]/hook",
        "https://0.0.0.0/hook",
        "https://100.64.0.1/hook",
        "https://224.0.0.1/hook",
        "https://localhost/hook",  # a name that resolves to loopback
        "http://hooks.example.com/hook",
        "ftp://hooks.example.com/hook",
        "https://user:pw@hooks.example.com/hook",
    ],
)
def test_a_webhook_to_a_private_or_insecure_target_is_refused(url, officer_principal, team, audit_mark):
    mark = audit_mark()
    with pytest.raises(targets.TargetRefused):
        services.webhook_create(actor=officer_principal, team=team, url=url, events=EVENTS)
    assert Webhook.objects.count() == 0
    assert mark.actions(action="webhook.created") == []


def public(host, port):
    return ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]


def test_a_host_resolving_to_public_addresses_is_accepted():
    target = targets.check("https://hooks.example.com/a?b=1", allowed={}, resolver=public)
    assert target.addresses == ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946")
    assert (target.host, target.port, target.path) == ("hooks.example.com", 443, "/a?b=1")


@pytest.mark.parametrize("answer", [["10.1.2.3"], ["93.184.216.34", "127.0.0.1"], ["::ffff:192.168.0.1"], ["fc00::5"]])
def test_a_host_name_resolving_to_any_private_address_is_refused(answer):
    with pytest.raises(targets.TargetRefused):
        targets.check("https://hooks.example.com/", allowed={}, resolver=lambda host, port: answer)


def test_an_allowed_host_may_resolve_anywhere_and_use_http_only_when_allowed():
    loopback = lambda host, port: ["127.0.0.1"]  # noqa: E731
    assert targets.check("https://hooks.internal/", allowed={"hooks.internal": False}, resolver=loopback)
    with pytest.raises(targets.TargetRefused):
        targets.check("http://hooks.internal/", allowed={"hooks.internal": False}, resolver=loopback)
    assert targets.check("http://hooks.internal/", allowed={"hooks.internal": True}, resolver=loopback)
    with pytest.raises(targets.TargetRefused):
        targets.check("https://other.internal/", allowed={"hooks.internal": True}, resolver=loopback)


def test_without_the_allowance_the_local_receiver_is_refused_and_with_it_accepted(
    officer_principal, admin_principal, team, receiver
):
    with pytest.raises(targets.TargetRefused):
        services.webhook_create(actor=officer_principal, team=team, url=receiver.url, events=EVENTS)
    services.allowed_host_create(actor=admin_principal, host="127.0.0.1", allow_http=True)
    webhook, _ = services.webhook_create(actor=officer_principal, team=team, url=receiver.url, events=EVENTS)
    assert webhook.url == receiver.url


def test_a_host_that_does_not_resolve_is_refused_at_creation(officer_principal, team):
    with pytest.raises(ValidationFailed) as caught:
        services.webhook_create(
            actor=officer_principal, team=team, url="https://no-such-host.invalid/hook", events=EVENTS
        )
    assert "does not resolve" in str(caught.value)
