"""Sign-in attempts are rate-limited per client address and per account (a 429 page with
Retry-After), and password spraying over unknown usernames costs the audit trail one row per
address and window instead of one per guess."""

from __future__ import annotations

import pytest
from django.test import override_settings

from apps.audit.models import AuditEvent

PASSWORD = "correct horse battery staple"  # the factories' password

pytestmark = pytest.mark.django_db


def sign_in(client, username: str, password: str = PASSWORD, address: str = "127.0.0.1"):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


@override_settings(ASSAY_LOGIN_ADDRESS_RATE="3/minute", ASSAY_LOGIN_ACCOUNT_RATE="off")
def test_sign_in_attempts_are_limited_per_address(client, make_user, audit_mark):
    make_user(username="alice")
    mark = audit_mark()
    for name in ("a1", "a2", "a3"):
        assert sign_in(client, name, "wrong").status_code == 200

    refused = sign_in(client, "alice")  # even the right password: the address is over its limit

    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    assert b"Too many sign-in attempts" in refused.content
    assert "_auth_user_id" not in client.session
    assert [e.action for e in mark.new(action="user.login_throttled")] == ["user.login_throttled"]
    assert sign_in(client, "alice", address="192.0.2.44").status_code == 302  # another address signs in


@override_settings(ASSAY_LOGIN_ADDRESS_RATE="off", ASSAY_LOGIN_ACCOUNT_RATE="2/minute")
def test_sign_in_attempts_are_limited_per_account_across_addresses(client, make_user):
    make_user(username="alice")
    make_user(username="bob")
    assert sign_in(client, "alice", "wrong", address="192.0.2.1").status_code == 200
    assert sign_in(client, "Alice", "wrong", address="192.0.2.2").status_code == 200

    refused = sign_in(client, "alice", address="192.0.2.3")

    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    assert sign_in(client, "bob", address="192.0.2.3").status_code == 302


@override_settings(
    ASSAY_LOGIN_ADDRESS_RATE="off", ASSAY_LOGIN_ACCOUNT_RATE="off", ASSAY_UNAUTHENTICATED_AUDIT_WINDOW_SECONDS=3600
)
def test_password_spraying_over_unknown_usernames_does_not_flood_the_trail(client, audit_mark):
    mark = audit_mark()

    for n in range(25):
        response = sign_in(client, f"ghost{n}", "Winter2026!")
        assert b"The username or password is not correct." in response.content

    failures = mark.new(action="user.login_failed")
    assert len(failures) == 1  # the first guess, with the name tried; the rest are counted for the next row
    assert failures[0].reason == "unknown username" and failures[0].target_name == "ghost0"
    assert AuditEvent.objects.filter(action="user.login_failed", client_ip="127.0.0.1").count() == 1


@override_settings(ASSAY_LOGIN_ADDRESS_RATE="off", ASSAY_LOGIN_ACCOUNT_RATE="off")
def test_wrong_passwords_for_a_real_account_are_each_recorded(client, make_user, audit_mark, settings):
    settings.ASSAY_LOGIN_MAX_FAILURES = 10
    make_user(username="alice")
    mark = audit_mark()
    for _ in range(3):
        sign_in(client, "alice", "wrong")
    assert len(mark.new(action="user.login_failed")) == 3
