"""Staff sign-in resists guessing: django-axes locks an account and a client address out of /admin/login/."""

import logging
from datetime import timedelta
from http import HTTPStatus

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.hashers import MD5PasswordHasher
from django.test import Client

from authbridge.models import User

PASSWORD = "a-long-staff-password-1"
LIMIT = 3


@pytest.fixture(autouse=True)
def lockout_settings(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    # A fast hasher: the tests count its calls, not its cost.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin_user(db):
    return User.objects.create_superuser(username="admin", email="admin@example.com", password=PASSWORD)


@pytest.fixture
def carol_user(db):
    return User.objects.create_superuser(username="carol", email="carol@example.com", password=PASSWORD)


@pytest.fixture
def hasher_calls(monkeypatch):
    """Every password hashed or checked, by the user's check_password or ModelBackend's dummy hash."""
    calls = []
    for name in ("verify", "encode"):
        original = getattr(MD5PasswordHasher, name)

        def spy(self, *args, _original=original, _name=name, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(MD5PasswordHasher, name, spy)
    return calls


def sign_in(client, username, password):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password})


def from_address(address):
    return Client(REMOTE_ADDR=address)


def fail(client, username, times):
    """Wrong passwords: the form again with its error, and from the LIMIT-th on, the lockout."""
    for attempt in range(1, times + 1):
        expected = HTTPStatus.TOO_MANY_REQUESTS if attempt >= LIMIT else HTTPStatus.OK
        assert sign_in(client, username, "wrong").status_code == expected


def test_the_right_password_signs_in_below_the_limit(admin_user):
    client = from_address("203.0.113.1")
    fail(client, "admin", LIMIT - 1)

    response = sign_in(client, "admin", PASSWORD)

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/admin/"


def test_an_account_is_locked_out_after_the_limit_even_from_another_address(admin_user):
    fail(from_address("203.0.113.1"), "admin", LIMIT)

    response = sign_in(from_address("198.51.100.7"), "admin", PASSWORD)

    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert b"too many login attempts" in response.content


def test_an_address_is_locked_out_after_the_limit_whichever_account_it_tries(admin_user, carol_user):
    client = from_address("203.0.113.1")
    fail(client, "nobody", LIMIT)

    assert sign_in(client, "carol", PASSWORD).status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert sign_in(from_address("198.51.100.7"), "carol", PASSWORD).status_code == HTTPStatus.FOUND


def test_a_locked_out_attempt_hashes_no_password(admin_user, hasher_calls):
    client = from_address("203.0.113.1")
    fail(client, "admin", LIMIT)
    assert hasher_calls  # the failures before the lockout were checked

    hasher_calls.clear()
    locked_out = sign_in(client, "admin", PASSWORD)
    unknown_user = sign_in(client, "nobody", "wrong")

    assert locked_out.status_code == unknown_user.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert hasher_calls == []


def test_the_lockout_expires_after_the_cool_off(admin_user):
    client = from_address("203.0.113.1")
    fail(client, "admin", LIMIT)
    assert sign_in(client, "admin", PASSWORD).status_code == HTTPStatus.TOO_MANY_REQUESTS

    sixteen_minutes_ago = AccessAttempt.objects.get().attempt_time - timedelta(minutes=16)
    AccessAttempt.objects.update(attempt_time=sixteen_minutes_ago)

    assert sign_in(client, "admin", PASSWORD).status_code == HTTPStatus.FOUND


def test_an_admin_lifts_a_lockout_by_deleting_the_access_attempt(admin_user, carol_user):
    fail(from_address("203.0.113.1"), "admin", LIMIT)
    carol = from_address("198.51.100.7")
    assert sign_in(carol, "carol", PASSWORD).status_code == HTTPStatus.FOUND
    attempt = AccessAttempt.objects.get(username="admin")

    listed = carol.get("/admin/axes/accessattempt/")
    deleted = carol.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})

    assert listed.status_code == HTTPStatus.OK
    assert b"203.0.113.1" in listed.content
    assert deleted.status_code == HTTPStatus.FOUND
    assert sign_in(from_address("203.0.113.1"), "admin", PASSWORD).status_code == HTTPStatus.FOUND


def test_failures_are_logged_with_the_address_not_the_username(admin_user, caplog):
    with caplog.at_level(logging.WARNING, logger="axes"):
        fail(from_address("203.0.113.1"), "admin", 2)

    failures = [record.getMessage() for record in caplog.records if record.name.startswith("axes")]
    assert [message.split(" by ")[0] for message in failures] == [
        "AXES: New login failure",
        "AXES: Repeated login failure",
    ]
    assert all('ip_address: "203.0.113.1"' in message for message in failures)
    assert not any('"admin"' in message for message in failures)


def test_behind_trusted_proxies_the_address_is_the_one_they_appended(settings, admin_user):
    settings.TRUSTED_PROXY_COUNT = 1
    # Each guess forges a different address on the left; the proxy appended the real one.
    for forged in range(1, LIMIT + 1):
        client = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=f"192.0.2.{forged}, 203.0.113.1")
        sign_in(client, f"nobody-{forged}", "wrong")

    locked = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.1")
    other = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert sign_in(locked, "admin", PASSWORD).status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert sign_in(other, "admin", PASSWORD).status_code == HTTPStatus.FOUND


def test_api_requests_never_reach_axes(alice, monkeypatch):
    def fail_if_called(*args, **kwargs):
        raise AssertionError("axes ran on an API request")

    monkeypatch.setattr("axes.middleware.get_lockout_response", fail_if_called)
    monkeypatch.setattr("axes.handlers.proxy.AxesProxyHandler.is_allowed", fail_if_called)

    response = alice.get("/api/v1/tasks")

    assert response.status_code == HTTPStatus.OK
    assert AccessAttempt.objects.count() == 0
