"""The JWKS cache: lazy fetch, refetch limits, rotation, replacement and outages."""

import contextlib
import logging
import threading
import time
from http import HTTPStatus

import pytest

from authbridge import authentication
from tests.conftest import client_with, ed25519_key
from tests.support.clock import FakeClock

ME = "/api/v1/me"


def status_with(token):
    return client_with(token).get(ME).status_code


@pytest.fixture
def fast_refetch(settings, better_auth):
    """A short refetch interval, passed by advancing `jwks_clock`."""
    settings.BETTER_AUTH = {**better_auth, "JWKS_REFETCH_INTERVAL_SECONDS": 0.3}
    return settings.BETTER_AUTH


def test_it_fetches_nothing_before_the_first_token(db, better_auth, signing_key, jwks_server, anonymous):
    anonymous.get(ME)
    assert jwks_server.requests == 0


def test_a_token_that_is_not_even_a_jwt_fetches_nothing(db, better_auth, signing_key, jwks_server):
    assert status_with("abc") == HTTPStatus.UNAUTHORIZED
    assert jwks_server.requests == 0


def test_it_fetches_once_and_then_serves_keys_from_memory(db, token_for, jwks_server):
    for _ in range(5):
        assert status_with(token_for()) == HTTPStatus.OK
    assert jwks_server.requests == 1


def test_it_sends_a_user_agent(db, token_for, jwks_server):
    status_with(token_for())
    assert jwks_server.user_agents == ["todo-api-authbridge/1.0"]


@pytest.mark.parametrize("issued", ["before the fetch", "after the fetch", "without iat"])
def test_unknown_kids_are_401_without_a_refetch_whatever_the_tokens_iat(
    db, better_auth, signing_key, claims_for, jwks_server, issued
):
    assert status_with(signing_key.sign(claims_for())) == HTTPStatus.OK
    iat = {
        "before the fetch": int(time.time()) - 60,
        "after the fetch": int(time.time()) + 5,
        "without iat": ...,
    }
    for _ in range(20):
        stranger = client_with(ed25519_key().sign(claims_for(iat=iat[issued]))).get(ME)
        assert stranger.status_code == HTTPStatus.UNAUTHORIZED
        assert stranger.json()["code"] == "invalid_token"
    assert jwks_server.requests == 1


def test_unknown_kids_refetch_at_most_once_per_interval(
    db, settings, better_auth, signing_key, claims_for, jwks_server, jwks_clock
):
    # The interval passes only when the test advances the clock, however slow the machine.
    settings.BETTER_AUTH = {**better_auth, "JWKS_REFETCH_INTERVAL_SECONDS": 2}
    assert status_with(signing_key.sign(claims_for())) == HTTPStatus.OK
    for _ in range(2):
        statuses = {status_with(ed25519_key().sign(claims_for())) for _ in range(20)}
        assert statuses == {HTTPStatus.UNAUTHORIZED}
        jwks_clock.advance(2.05)
    assert jwks_server.requests == 2


def test_a_kid_published_just_after_a_fetch_gets_401_until_the_refetch_then_works(
    db, settings, better_auth, signing_key, claims_for, jwks_server, jwks_clock
):
    settings.BETTER_AUTH = {**better_auth, "JWKS_REFETCH_INTERVAL_SECONDS": 2}
    assert status_with(signing_key.sign(claims_for())) == HTTPStatus.OK
    rotated = ed25519_key()
    jwks_server.publish(signing_key, rotated)
    response = client_with(rotated.sign(claims_for())).get(ME)
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["code"] == "invalid_token"
    jwks_clock.advance(2.05)
    assert status_with(rotated.sign(claims_for())) == HTTPStatus.OK


def test_concurrent_unknown_kids_share_one_fetch(db, better_auth, signing_key, claims_for, jwks_server):
    from authbridge.verifier import get_verifier

    jwks_server.delay = 0.3
    verifier = get_verifier()
    strangers = [ed25519_key().sign(claims_for()) for _ in range(8)]
    threads = [threading.Thread(target=_verify_quietly, args=(verifier, token)) for token in strangers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert jwks_server.requests == 1


def _verify_quietly(verifier, token):
    with contextlib.suppress(Exception):
        verifier.verify(token)


def test_a_key_added_to_the_jwks_is_accepted_after_the_refetch_interval(
    db, fast_refetch, signing_key, claims_for, jwks_server, jwks_clock
):
    assert status_with(signing_key.sign(claims_for())) == HTTPStatus.OK
    rotated = ed25519_key()
    jwks_server.publish(signing_key, rotated)
    jwks_clock.advance(0.35)
    assert status_with(rotated.sign(claims_for())) == HTTPStatus.OK
    assert status_with(signing_key.sign(claims_for())) == HTTPStatus.OK


def test_an_empty_key_set_is_not_cached_as_final(db, fast_refetch, claims_for, jwks_server, jwks_clock):
    jwks_server.keys = []
    key = ed25519_key()
    assert status_with(key.sign(claims_for())) == HTTPStatus.UNAUTHORIZED
    jwks_server.publish(key)
    jwks_clock.advance(0.35)
    assert status_with(key.sign(claims_for())) == HTTPStatus.OK


def test_the_set_is_replaced_after_its_ttl_so_removed_keys_stop_working(
    db, settings, better_auth, claims_for, jwks_server, jwks_clock
):
    settings.BETTER_AUTH = {**better_auth, "JWKS_TTL_SECONDS": 0.3, "JWKS_REFETCH_INTERVAL_SECONDS": 0.1}
    old, new = ed25519_key(), ed25519_key()
    jwks_server.publish(old, new)
    assert status_with(old.sign(claims_for())) == HTTPStatus.OK
    jwks_server.publish(new)
    jwks_clock.advance(0.35)
    assert status_with(old.sign(claims_for())) == HTTPStatus.UNAUTHORIZED
    assert status_with(new.sign(claims_for())) == HTTPStatus.OK


class TestOutage:
    def test_cached_keys_keep_working_while_the_jwks_server_fails(
        self, db, settings, better_auth, signing_key, claims_for, jwks_server, jwks_clock
    ):
        settings.BETTER_AUTH = {**better_auth, "JWKS_TTL_SECONDS": 0.1, "JWKS_REFETCH_INTERVAL_SECONDS": 0.1}
        assert status_with(signing_key.sign(claims_for())) == HTTPStatus.OK
        jwks_server.status = 500
        jwks_clock.advance(0.15)
        assert status_with(signing_key.sign(claims_for())) == HTTPStatus.OK
        assert jwks_server.requests == 2

    def test_cached_keys_keep_working_when_the_jwks_server_is_gone(
        self, db, settings, better_auth, signing_key, claims_for, jwks_server, jwks_clock
    ):
        settings.BETTER_AUTH = {**better_auth, "JWKS_TTL_SECONDS": 0.1, "JWKS_REFETCH_INTERVAL_SECONDS": 0.1}
        assert status_with(signing_key.sign(claims_for())) == HTTPStatus.OK
        jwks_server.stop()
        jwks_clock.advance(0.15)
        assert status_with(signing_key.sign(claims_for())) == HTTPStatus.OK

    def test_an_unseen_kid_gets_503_with_retry_after_when_the_jwks_server_is_gone(
        self, db, fast_refetch, signing_key, claims_for, jwks_server, jwks_clock
    ):
        assert status_with(signing_key.sign(claims_for())) == HTTPStatus.OK
        jwks_server.stop()
        jwks_clock.advance(0.35)
        response = client_with(ed25519_key().sign(claims_for())).get(ME)
        assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
        assert response["Retry-After"] == "1"  # the refetch interval is 0.3 s
        assert response.json() == {
            "status": 503,
            "code": "keys_unavailable",
            "message": "The token's signing key cannot be checked right now. Retry shortly.",
        }

    def test_repeated_503s_for_unseen_kids_log_one_error_per_minute_with_a_count(
        self, db, fast_refetch, signing_key, claims_for, jwks_server, jwks_clock, monkeypatch, caplog
    ):
        summary = authentication.KEYS_UNAVAILABLE_LOG
        monkeypatch.setattr(summary, "clock", FakeClock(1000.0))
        monkeypatch.setattr(summary, "_next_at", None)
        monkeypatch.setattr(summary, "_count", 0)
        assert status_with(signing_key.sign(claims_for())) == HTTPStatus.OK
        jwks_server.stop()
        jwks_clock.advance(0.35)

        def unseen_kids(times):
            # Any signature will do: the token is refused before it is checked.
            return {status_with(ed25519_key(kid=f"k{n}").sign(claims_for())) for n in range(times)}

        with caplog.at_level(logging.INFO):
            statuses = unseen_kids(5)
            summary.clock.advance(61)
            statuses |= unseen_kids(3)

        assert statuses == {HTTPStatus.SERVICE_UNAVAILABLE}
        errors = [
            (record.name, record.getMessage()) for record in caplog.records if record.levelno >= logging.ERROR
        ]
        assert errors == [
            (
                "authbridge.authentication",
                "Token signing keys unavailable, requests answered 503: 1 in the last 60 s at most",
            ),
            (
                "authbridge.authentication",
                "Token signing keys unavailable, requests answered 503: 5 in the last 60 s at most",
            ),
        ]
        request_lines = [record for record in caplog.records if record.name == "todo_api.request"]
        assert [(record.levelname, record.status) for record in request_lines][-8:] == [("WARNING", 503)] * 8

    @pytest.mark.parametrize("body", [b"<html>oops</html>", b'{"keys": 3}', b"[]", b""])
    def test_a_broken_first_answer_gives_503_not_500(
        self, db, better_auth, signing_key, claims_for, jwks_server, body
    ):
        jwks_server.body = body
        assert status_with(signing_key.sign(claims_for())) == HTTPStatus.SERVICE_UNAVAILABLE

    def test_an_error_status_on_the_first_fetch_gives_503(
        self, db, better_auth, signing_key, claims_for, jwks_server
    ):
        jwks_server.status = 502
        assert status_with(signing_key.sign(claims_for())) == HTTPStatus.SERVICE_UNAVAILABLE

    def test_a_hung_jwks_server_is_given_up_on_after_the_timeout(
        self, db, settings, better_auth, signing_key, claims_for, jwks_server
    ):
        settings.BETTER_AUTH = {**better_auth, "JWKS_TIMEOUT_SECONDS": 0.2}
        jwks_server.delay = 1.0
        started = time.monotonic()
        assert status_with(signing_key.sign(claims_for())) == HTTPStatus.SERVICE_UNAVAILABLE
        assert time.monotonic() - started < 0.9

    def test_a_malformed_key_is_skipped_and_the_others_still_work(
        self, db, better_auth, signing_key, claims_for, jwks_server
    ):
        jwks_server.keys = [
            {"kty": "OKP", "crv": "Ed25519", "x": "not-base64!", "kid": "broken"},
            {"kty": "oct", "k": "c2VjcmV0", "kid": "symmetric"},
            "junk",
            signing_key.jwk,
        ]
        assert status_with(signing_key.sign(claims_for())) == HTTPStatus.OK
