"""Signing in and out of the dashboard: lockout, audit, session expiry, safe redirects."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.utils import timezone

from apps.accounts.models import User

PASSWORD = "correct horse battery staple"  # the factories' password


def sign_in(client, username: str, password: str = PASSWORD, **extra):
    return client.post("/login/", {"username": username, "password": password, **extra})


@pytest.mark.django_db
def test_the_sign_in_page_renders(client):
    response = client.get("/login/")
    assert response.status_code == 200
    assert b'name="username"' in response.content and b'name="password"' in response.content


@pytest.mark.django_db
def test_a_person_signs_in_and_it_is_audited(client, make_user, audit_mark):
    # given
    user = make_user("viewer", username="alice")
    mark = audit_mark()
    # when
    response = sign_in(client, "alice")
    # then: signed in, sent to the inventory, and the trail says so
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.session["_auth_user_id"] == str(user.pk)
    (event,) = mark.new(action="user.logged_in")
    assert event.actor_type == "user" and event.actor_id == str(user.pk)
    assert event.source == "web"


@pytest.mark.django_db
def test_a_wrong_password_is_refused_and_audited(client, make_user, audit_mark):
    make_user(username="alice")
    mark = audit_mark()
    response = sign_in(client, "alice", "wrong password!")
    assert response.status_code == 200
    assert b"The username or password is not correct." in response.content
    assert "_auth_user_id" not in client.session
    (event,) = mark.new(action="user.login_failed")
    assert event.outcome == "denied"
    assert event.target_name == "alice"


@pytest.mark.django_db
def test_an_unknown_username_gets_the_same_answer(client, audit_mark):
    mark = audit_mark()
    response = sign_in(client, "nobody")
    assert b"The username or password is not correct." in response.content
    assert mark.new(action="user.login_failed")[0].reason == "unknown username"


@pytest.mark.django_db
def test_repeated_failures_lock_the_account(client, make_user, audit_mark, settings):
    # given: an account and the configured number of allowed failures
    settings.ASSAY_LOGIN_MAX_FAILURES = 3
    user = make_user(username="alice")
    mark = audit_mark()
    # when: three wrong passwords in a row
    for _ in range(3):
        sign_in(client, "alice", "wrong password!")
    # then: the account is locked and even the right password is refused, with a clear message
    user.refresh_from_db()
    assert user.is_locked()
    response = sign_in(client, "alice")
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert b"This account is locked after repeated failed sign-in attempts" in response.content
    # and every attempt is in the trail, the lock included
    failures = mark.new(action="user.login_failed")
    assert len(failures) == 4
    assert "account locked" in failures[2].reason
    assert failures[3].reason == "account is locked after repeated failures"


@pytest.mark.django_db
def test_the_lock_ends_after_the_lockout_period(client, make_user, settings):
    settings.ASSAY_LOGIN_MAX_FAILURES = 2
    user = make_user(username="alice")
    for _ in range(2):
        sign_in(client, "alice", "wrong password!")
    # when: the lockout period has passed
    User.objects.filter(pk=user.pk).update(locked_until=timezone.now() - timedelta(seconds=1))
    # then
    assert sign_in(client, "alice").status_code == 302


@pytest.mark.django_db
def test_a_success_resets_the_failure_count(client, make_user, settings):
    settings.ASSAY_LOGIN_MAX_FAILURES = 3
    user = make_user(username="alice")
    sign_in(client, "alice", "wrong password!")
    sign_in(client, "alice", "wrong password!")
    assert sign_in(client, "alice").status_code == 302
    user.refresh_from_db()
    assert user.failed_login_count == 0 and user.locked_until is None


@pytest.mark.django_db
def test_a_disabled_account_cannot_sign_in(client, make_user):
    user = make_user(username="alice")
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert sign_in(client, "alice").status_code == 200
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_next_is_followed_only_within_the_site(client, make_user):
    make_user(username="alice")
    assert sign_in(client, "alice", next="/datasets/")["Location"] == "/datasets/"
    client.logout()
    assert sign_in(client, "alice", next="https://evil.example/steal")["Location"] == "/"


@pytest.mark.django_db
def test_dashboard_pages_send_anonymous_visitors_to_sign_in(client):
    for path in ("/", "/datasets/", "/tokens/", "/models/anything/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/login/?next="), path


@pytest.mark.django_db
def test_sign_out_is_post_only_and_ends_the_session(client, make_user):
    user = make_user("viewer")
    client.force_login(user)
    # a GET (a link, an image) does not sign anyone out
    assert client.get("/logout/").status_code == 405
    assert client.get("/").status_code == 200
    # when
    response = client.post("/logout/")
    # then
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert client.get("/").status_code == 302


def test_sessions_expire_by_configuration():
    assert settings.SESSION_COOKIE_AGE <= 12 * 3600
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE is True
    assert settings.SESSION_COOKIE_HTTPONLY is True


@pytest.mark.django_db
def test_a_session_past_its_expiry_no_longer_signs_anyone_in(client, make_user):
    # given: a signed-in person, whose session cookie is a browser-session cookie
    make_user("viewer", username="alice")
    response = sign_in(client, "alice")
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert not cookie["max-age"] and not cookie["expires"]
    assert client.get("/").status_code == 200
    # when: the server-side session reaches its age limit
    Session.objects.filter(session_key=client.session.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    # then: the next request goes to the sign-in page
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
