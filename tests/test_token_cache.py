"""Verified tokens are remembered, but never past their expiry, a key-set change or the recheck time."""

import time
from http import HTTPStatus

from authbridge.authentication import token_cache
from authbridge.models import User
from tests.conftest import client_with, ed25519_key

ME = "/api/v1/me"


def test_a_repeated_token_needs_no_database_query_to_authenticate(db, token_for, django_assert_num_queries):
    client = client_with(token_for("repeat"))
    assert client.get(ME).status_code == HTTPStatus.OK
    with django_assert_num_queries(0):
        assert client.get(ME).status_code == HTTPStatus.OK


def test_a_remembered_token_stops_working_when_it_expires(db, settings, better_auth, signing_key, claims_for):
    settings.BETTER_AUTH = {**better_auth, "LEEWAY_SECONDS": 0}
    client = client_with(signing_key.sign(claims_for(exp=time.time() + 1.0)))
    assert client.get(ME).status_code == HTTPStatus.OK
    time.sleep(1.1)
    assert client.get(ME).status_code == HTTPStatus.UNAUTHORIZED


def test_a_remembered_token_stops_working_when_its_key_leaves_the_jwks(
    db, settings, better_auth, claims_for, jwks_server
):
    settings.BETTER_AUTH = {**better_auth, "JWKS_TTL_SECONDS": 0.2, "JWKS_REFETCH_INTERVAL_SECONDS": 0.1}
    old, new = ed25519_key(), ed25519_key()
    jwks_server.publish(old, new)
    client = client_with(old.sign(claims_for()))
    assert client.get(ME).status_code == HTTPStatus.OK
    jwks_server.publish(new)
    time.sleep(0.25)
    assert client.get(ME).status_code == HTTPStatus.UNAUTHORIZED


def test_a_disabled_account_is_refused_once_the_recheck_time_passes(db, token_for, monkeypatch):
    monkeypatch.setattr(token_cache, "recheck_seconds", 0.2)
    client = client_with(token_for("soon-gone"))
    assert client.get(ME).status_code == HTTPStatus.OK
    User.objects.filter(sub="soon-gone").update(is_active=False)
    time.sleep(0.25)
    assert client.get(ME).status_code == HTTPStatus.FORBIDDEN


def test_the_cache_is_bounded(db, token_for, monkeypatch):
    monkeypatch.setattr(token_cache, "max_entries", 3)
    for _ in range(5):
        client_with(token_for()).get(ME)
    assert len(token_cache._entries) == 3
