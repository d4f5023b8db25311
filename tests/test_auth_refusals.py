"""Every way a bearer token can be refused, one test each, and the ways it is accepted."""

import base64
import hashlib
import hmac
import json
import time
from http import HTTPStatus

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from tests.conftest import SECRET, client_with, ec_key, ed25519_key, rsa_key, sign
from tests.support.assertions import assert_asks_for_a_token, assert_refused

ME = "/api/v1/me"


def get_me(token, header=None):
    client = client_with()
    return client.get(ME, HTTP_AUTHORIZATION=header if header is not None else f"Bearer {token}")


@pytest.fixture
def hs256_token(better_auth, claims_for):
    def make(secret=SECRET, **overrides):
        return jwt.encode(claims_for(**overrides), secret, algorithm="HS256")

    return make


class TestMissingCredentials:
    def test_it_answers_401_with_a_bearer_challenge_without_a_header(self, anonymous, better_auth):
        assert_asks_for_a_token(anonymous.get(ME))

    def test_it_treats_another_scheme_as_missing_credentials(self, db, better_auth):
        response = get_me(None, header="Basic YWxpY2U6c2VjcmV0")
        assert response.status_code == HTTPStatus.UNAUTHORIZED
        assert response["WWW-Authenticate"] == "Bearer"

    @pytest.mark.parametrize("parameter", ["token", "access_token", "jwt"])
    def test_it_ignores_a_token_in_the_query_string(self, db, token_for, parameter):
        response = client_with().get(f"{ME}?{parameter}={token_for()}")
        assert response.status_code == HTTPStatus.UNAUTHORIZED
        assert response["WWW-Authenticate"] == "Bearer"

    @pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Bearer a b"])
    def test_it_refuses_an_empty_or_split_token(self, db, better_auth, header):
        assert_refused(get_me(None, header=header))


class TestAccepted:
    @pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "BeArEr"])
    def test_the_scheme_word_is_case_insensitive(self, db, token_for, scheme):
        response = get_me(None, header=f"{scheme} {token_for('alice-sub')}")
        assert response.status_code == HTTPStatus.OK
        assert response.json()["id"] == "alice-sub"

    @pytest.mark.parametrize(
        "make_key",
        [
            ed25519_key,
            lambda: ec_key("ES256"),
            lambda: ec_key("ES512"),
            lambda: rsa_key("RS256"),
            lambda: rsa_key("PS256"),
        ],
        ids=["EdDSA", "ES256", "ES512", "RS256", "PS256"],
    )
    def test_it_accepts_each_asymmetric_algorithm_from_the_jwks(
        self, db, better_auth, jwks_server, claims_for, make_key
    ):
        key = make_key()
        jwks_server.publish(key)
        response = get_me(key.sign(claims_for("carol")))
        assert response.status_code == HTTPStatus.OK
        assert response.json()["id"] == "carol"

    def test_it_accepts_the_rfc_9864_ed25519_label(self, db, better_auth, signing_key, claims_for):
        token = signing_key.sign(claims_for("dave"), alg="Ed25519")
        assert get_me(token).status_code == HTTPStatus.OK

    def test_it_accepts_hs256_signed_with_the_shared_secret(self, db, hs256_token):
        response = get_me(hs256_token(sub="erin"))
        assert response.status_code == HTTPStatus.OK
        assert response.json()["id"] == "erin"

    def test_it_uses_the_only_fitting_key_for_a_token_without_kid(
        self, db, better_auth, signing_key, claims_for
    ):
        token = jwt.encode(claims_for("frank"), signing_key.private_key, algorithm="EdDSA")
        assert get_me(token).status_code == HTTPStatus.OK

    def test_it_accepts_an_audience_list_that_contains_ours(
        self, db, better_auth, signing_key, claims_for, jwks_server
    ):
        token = signing_key.sign(claims_for(aud=["https://other.example", jwks_server.origin]))
        assert get_me(token).status_code == HTTPStatus.OK

    def test_it_accepts_an_expiry_within_the_leeway(self, db, token_for):
        assert get_me(token_for(exp=int(time.time()) - 5)).status_code == HTTPStatus.OK

    def test_it_checks_neither_issuer_nor_audience_when_none_is_expected(
        self, db, better_auth, settings, signing_key, claims_for
    ):
        settings.BETTER_AUTH = {**better_auth, "ISSUER": None, "AUDIENCE": None}
        token = signing_key.sign(claims_for(iss=..., aud="https://anything.example"))
        assert get_me(token).status_code == HTTPStatus.OK


class TestAlgorithmRefusals:
    def test_it_refuses_alg_none(self, db, better_auth, claims_for):
        token = jwt.encode(claims_for(), None, algorithm="none")
        assert_refused(get_me(token))

    @pytest.mark.parametrize("encoding", ["raw", "pem"])
    def test_it_refuses_hs256_signed_with_the_jwks_public_key(
        self, db, better_auth, signing_key, claims_for, encoding
    ):
        public = signing_key.private_key.public_key()
        if encoding == "raw":
            secret = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        else:
            secret = public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        assert_refused(get_me(_hmac_signed(claims_for(), secret, kid=signing_key.kid)))

    def test_it_refuses_hs256_when_no_shared_secret_is_configured(
        self, db, settings, better_auth, hs256_token
    ):
        settings.BETTER_AUTH = {**better_auth, "SECRET": None}
        assert_refused(get_me(hs256_token()))

    def test_it_refuses_hs256_signed_with_another_secret(self, db, hs256_token):
        assert_refused(get_me(hs256_token(secret="another-secret-that-is-long-enough-too")))

    def test_it_refuses_hs384(self, db, better_auth, claims_for):
        assert_refused(get_me(jwt.encode(claims_for(), SECRET, algorithm="HS384")))

    def test_it_refuses_an_rsa_key_used_for_eddsa(self, db, better_auth, jwks_server, claims_for):
        published, attacker = rsa_key("RS256"), ed25519_key()
        jwks_server.publish(published)
        assert_refused(
            get_me(sign(claims_for(), attacker.private_key, "EdDSA", headers={"kid": published.kid}))
        )

    def test_it_refuses_an_ec_key_used_for_rs256(self, db, better_auth, jwks_server, claims_for):
        published, attacker = ec_key("ES256"), rsa_key("RS256")
        jwks_server.publish(published)
        assert_refused(
            get_me(sign(claims_for(), attacker.private_key, "RS256", headers={"kid": published.kid}))
        )

    def test_it_refuses_an_algorithm_other_than_the_one_the_key_declares(
        self, db, better_auth, jwks_server, claims_for
    ):
        key = rsa_key("RS256")
        jwks_server.publish(key)
        token = jwt.encode(claims_for(), key.private_key, algorithm="PS256", headers={"kid": key.kid})
        assert_refused(get_me(token))

    def test_it_refuses_an_okp_key_on_another_curve(self, db, better_auth, jwks_server, claims_for):
        key = ed25519_key()
        jwks_server.keys = [{**key.jwk, "crv": "Ed448"}]
        assert_refused(get_me(key.sign(claims_for())))

    def test_it_refuses_a_token_without_kid_when_several_keys_fit(
        self, db, better_auth, jwks_server, claims_for
    ):
        first, second = ed25519_key(), ed25519_key()
        jwks_server.publish(first, second)
        assert_refused(get_me(jwt.encode(claims_for(), first.private_key, algorithm="EdDSA")))

    def test_it_refuses_an_unknown_kid(self, db, better_auth, signing_key, claims_for):
        stranger = ed25519_key()
        assert_refused(get_me(stranger.sign(claims_for())))

    def test_it_refuses_a_tampered_signature(self, db, token_for):
        header, payload, signature = token_for().split(".")
        tampered = signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")
        assert_refused(get_me(f"{header}.{payload}.{tampered}"))

    def test_it_refuses_a_tampered_payload(self, db, token_for, signing_key, claims_for):
        header, _, signature = token_for("alice").split(".")
        _, payload, _ = signing_key.sign(claims_for("mallory")).split(".")
        assert_refused(get_me(f"{header}.{payload}.{signature}"))


def _hmac_signed(claims, secret, kid):
    """An HS256 token keyed with arbitrary bytes (PyJWT refuses PEM keys as HMAC secrets)."""
    header = _b64(json.dumps({"alg": "HS256", "kid": kid}))
    signing_input = f"{header}.{_b64(json.dumps(claims))}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


class TestClaimRefusals:
    def test_it_refuses_an_expired_token(self, db, token_for):
        assert_refused(get_me(token_for(exp=int(time.time()) - 60)))

    @pytest.mark.parametrize("claim", ["exp", "sub"])
    def test_it_refuses_a_token_without_a_required_claim(
        self, db, better_auth, signing_key, claims_for, claim
    ):
        claims = claims_for()
        del claims[claim]
        assert_refused(get_me(signing_key.sign(claims)))

    @pytest.mark.parametrize("sub", ["", "   ", 42, ["alice"], "x" * 256, "line\nbreak"])
    def test_it_refuses_a_sub_that_is_not_a_sane_string(self, db, better_auth, signing_key, claims_for, sub):
        assert_refused(get_me(signing_key.sign({**claims_for(), "sub": sub})))

    def test_it_refuses_a_token_not_valid_yet(self, db, token_for):
        assert_refused(get_me(token_for(nbf=int(time.time()) + 120)))

    def test_it_refuses_a_token_issued_in_the_future(self, db, token_for):
        assert_refused(get_me(token_for(iat=int(time.time()) + 120)))

    @pytest.mark.parametrize("exp", ["9999999999", 10**20, True, None])
    def test_it_refuses_an_expiry_that_is_not_a_sane_number(
        self, db, better_auth, signing_key, claims_for, exp
    ):
        assert_refused(get_me(signing_key.sign({**claims_for(), "exp": exp})))

    def test_it_refuses_another_issuer(self, db, token_for):
        assert_refused(get_me(token_for(iss="http://localhost:3000")))

    def test_it_refuses_a_token_without_issuer_when_one_is_expected(self, db, token_for):
        assert_refused(get_me(token_for(iss=...)))

    @pytest.mark.parametrize("aud", ["https://other.example", ["https://other.example"], 7])
    def test_it_refuses_another_audience(self, db, token_for, aud):
        assert_refused(get_me(token_for(aud=aud)))

    def test_it_refuses_a_token_without_audience_when_one_is_expected(self, db, token_for):
        assert_refused(get_me(token_for(aud=...)))

    def test_it_refuses_better_auths_session_data_cookie(self, db, better_auth):
        # The session cookie cache is HS256 with the same secret but carries no `sub`.
        now = int(time.time())
        cookie = jwt.encode(
            {"session": {"id": "s1"}, "user": {"id": "u1"}, "iat": now, "exp": now + 300},
            SECRET,
            algorithm="HS256",
        )
        assert_refused(get_me(cookie))


class TestMalformedTokens:
    @pytest.mark.parametrize("token", ["abc", "a.b", "a.b.c.d", "....", "ey.ey.ey"])
    def test_it_refuses_what_is_not_a_jwt(self, db, better_auth, token):
        assert_refused(get_me(token))

    def test_it_refuses_a_very_long_token(self, db, token_for):
        assert_refused(get_me(token_for(padding="x" * 100_000)))

    def test_it_refuses_a_critical_header_extension(self, db, better_auth, signing_key, claims_for):
        assert_refused(get_me(signing_key.sign(claims_for(), headers={"crit": ["exp"], "exp": 1})))

    def test_it_refuses_duplicate_members_in_the_header(self, db, better_auth, signing_key, claims_for):
        token = signing_key.sign(claims_for())
        _, payload, signature = token.split(".")
        header = _b64(f'{{"alg":"EdDSA","kid":"{signing_key.kid}","alg":"none"}}')
        assert_refused(get_me(f"{header}.{payload}.{signature}"))

    def test_it_refuses_duplicate_members_in_the_payload(self, db, better_auth, signing_key, claims_for):
        claims = claims_for("alice")
        raw = json.dumps(claims, separators=(",", ":"))[:-1] + ',"sub":"mallory"}'
        token = jwt.PyJWS().encode(
            raw.encode(), signing_key.private_key, algorithm="EdDSA", headers={"kid": signing_key.kid}
        )
        assert_refused(get_me(token))


def _b64(text):
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()
