"""Verified tokens are remembered, but never past their expiry, a key-set change or the recheck time."""

from http import HTTPStatus

from authbridge.authentication import token_cache
from authbridge.models import User
from authbridge.token_cache import USER_RECHECK_SECONDS, TokenCache
from tests.conftest import client_with, ed25519_key
from tests.support.clock import FakeClock

ME = "/api/v1/me"
KEYS_VERSION = 1


def keys_version():
    return KEYS_VERSION


def test_a_repeated_token_needs_no_database_query_to_authenticate(db, token_for, django_assert_num_queries):
    client = client_with(token_for("repeat"))
    assert client.get(ME).status_code == HTTPStatus.OK
    with django_assert_num_queries(0):
        assert client.get(ME).status_code == HTTPStatus.OK


def test_a_remembered_token_is_forgotten_when_it_expires():
    # The verifier refuses an expired token on its own; this is the cache not outliving it.
    clock = FakeClock(start=1_000_000.0)
    cache = TokenCache(clock=clock)
    key = TokenCache.key("short-lived")
    cache.put(key, User(username="short-lived"), {"exp": clock() + 1.0}, KEYS_VERSION)
    assert cache.get(key, keys_version) is not None
    clock.advance(1.0)
    assert cache.get(key, keys_version) is None


def test_a_remembered_token_stops_working_when_its_key_leaves_the_jwks(
    db, settings, better_auth, claims_for, jwks_server, jwks_clock
):
    settings.BETTER_AUTH = {**better_auth, "JWKS_TTL_SECONDS": 0.2, "JWKS_REFETCH_INTERVAL_SECONDS": 0.1}
    old, new = ed25519_key(), ed25519_key()
    jwks_server.publish(old, new)
    client = client_with(old.sign(claims_for()))
    assert client.get(ME).status_code == HTTPStatus.OK
    jwks_server.publish(new)
    jwks_clock.advance(0.25)
    assert client.get(ME).status_code == HTTPStatus.UNAUTHORIZED


def test_a_disabled_account_is_refused_once_the_recheck_time_passes(db, token_for, token_cache_clock):
    client = client_with(token_for("soon-gone"))
    assert client.get(ME).status_code == HTTPStatus.OK
    User.objects.filter(sub="soon-gone").update(is_active=False)
    token_cache_clock.advance(USER_RECHECK_SECONDS)
    assert client.get(ME).status_code == HTTPStatus.FORBIDDEN


def test_the_cache_is_bounded(db, token_for, monkeypatch):
    monkeypatch.setattr(token_cache, "max_entries", 3)
    for _ in range(5):
        client_with(token_for()).get(ME)
    assert len(token_cache) == 3


def test_concurrent_requests_with_one_token_each_get_their_own_user():
    cache = TokenCache()
    key = TokenCache.key("shared")
    cache.put(key, User(username="shared"), {"exp": cache.clock() + 60}, KEYS_VERSION)
    first, second = cache.get(key, keys_version), cache.get(key, keys_version)
    assert first is not None and second is not None
    assert first[0] is not second[0]
    assert first[0].username == second[0].username == "shared"
