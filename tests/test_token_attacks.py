"""Attacks on the token itself, one test each, on top of the refusals in test_auth_refusals.py."""

import base64
import hashlib
import hmac
import json
import time
from http import HTTPStatus

import pytest
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import get_default_algorithms

from tests.conftest import JWKSServer, client_with, ec_key, ed25519_key, rsa_key, sign
from tests.support import assertions

ME = "/api/v1/me"


def get_me(token):
    return client_with().get(ME, HTTP_AUTHORIZATION=f"Bearer {token}")


def assert_refused(response):
    assertions.assert_refused(response, message_starts="Invalid token: ")


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hmac_signed(header, payload, secret):
    """An HS256 token over raw header and payload JSON text, keyed with arbitrary bytes."""
    signing_input = f"{b64(header)}.{b64(payload)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def signed_raw(key_pair, payload, header=None):
    """A token signed by `key_pair` over the raw payload text, which need not be valid for json.dumps."""
    header = header if header is not None else json.dumps({"alg": key_pair.alg, "kid": key_pair.kid})
    signing_input = f"{b64(header)}.{b64(payload)}".encode()
    algorithm = get_default_algorithms()[key_pair.alg]
    return f"{signing_input.decode()}.{b64(algorithm.sign(signing_input, key_pair.private_key))}"


@pytest.fixture
def attacker_server():
    """Where a token's jku/x5u would send us: it must never hear from us."""
    server = JWKSServer()
    yield server
    server.stop()


class TestAlgorithmConfusion:
    """HS256 keyed with the JWKS public key, in every form an attacker could copy it in."""

    @staticmethod
    def public_forms(key_pair):
        public = key_pair.private_key.public_key()
        forms = {
            "pem": public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            "der": public.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            "jwk-json": json.dumps(key_pair.jwk).encode(),
            "jwk-json-compact": json.dumps(key_pair.jwk, separators=(",", ":")).encode(),
        }
        if key_pair.alg.startswith("RS"):
            forms["pem-pkcs1"] = public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
            )
        else:
            forms["x962-point"] = public.public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        return forms

    @pytest.mark.parametrize("form", ["pem", "pem-pkcs1", "der", "jwk-json", "jwk-json-compact"])
    def test_it_refuses_hs256_keyed_with_the_rsa_public_key(
        self, db, better_auth, jwks_server, claims_for, form
    ):
        key = rsa_key("RS256")
        jwks_server.publish(key)
        secret = self.public_forms(key)[form]
        token = hmac_signed(
            json.dumps({"alg": "HS256", "kid": key.kid, "typ": "JWT"}), json.dumps(claims_for()), secret
        )
        assert_refused(get_me(token))

    @pytest.mark.parametrize("form", ["pem", "der", "jwk-json", "jwk-json-compact", "x962-point"])
    def test_it_refuses_hs256_keyed_with_the_ec_public_key(
        self, db, better_auth, jwks_server, claims_for, form
    ):
        key = ec_key("ES256")
        jwks_server.publish(key)
        secret = self.public_forms(key)[form]
        token = hmac_signed(
            json.dumps({"alg": "HS256", "kid": key.kid, "typ": "JWT"}), json.dumps(claims_for()), secret
        )
        assert_refused(get_me(token))

    @pytest.mark.parametrize("form", ["pem", "der", "jwk-json"])
    def test_it_refuses_hs256_keyed_with_a_public_key_when_no_secret_is_configured(
        self, db, settings, better_auth, jwks_server, claims_for, form
    ):
        settings.BETTER_AUTH = {**better_auth, "SECRET": None}
        key = rsa_key("RS256")
        jwks_server.publish(key)
        token = hmac_signed(
            json.dumps({"alg": "HS256", "kid": key.kid}),
            json.dumps(claims_for()),
            self.public_forms(key)[form],
        )
        assert_refused(get_me(token))

    @pytest.mark.parametrize("alg", ["HS384", "HS512", "hs256", "none", "None", "NONE", "RS1", "ES256K"])
    def test_it_refuses_other_algorithm_names_keyed_with_the_public_key(
        self, db, better_auth, jwks_server, claims_for, alg
    ):
        key = rsa_key("RS256")
        jwks_server.publish(key)
        pem = self.public_forms(key)["pem"]
        token = hmac_signed(json.dumps({"alg": alg, "kid": key.kid}), json.dumps(claims_for()), pem)
        assert_refused(get_me(token))


class TestCriticalHeaders:
    @pytest.mark.parametrize(
        "crit",
        [["exp"], [], ["b64"], ["kid"], ["x-unknown"], "exp", None, {"exp": 1}],
        ids=["exp", "empty", "b64", "kid", "unknown", "string", "null", "object"],
    )
    def test_it_refuses_any_crit_header(self, db, better_auth, signing_key, claims_for, crit):
        token = signing_key.sign(claims_for(), headers={"crit": crit, "b64": True, "x-unknown": 1})
        assert_refused(get_me(token))

    def test_it_refuses_an_unencoded_payload_without_crit(self, db, better_auth, signing_key, claims_for):
        token = signing_key.sign(claims_for(), headers={"b64": False})
        assert_refused(get_me(token))


class TestKeyLocationHeaders:
    """jku, x5u and an embedded jwk name where to get a key: the only keys are those of our JWKS URL."""

    def test_it_never_fetches_a_jku(
        self, db, better_auth, signing_key, claims_for, attacker_server, jwks_server
    ):
        attacker = ed25519_key()
        attacker_server.publish(attacker)
        token = attacker.sign(claims_for(iat=int(time.time()) - 60), headers={"jku": attacker_server.url})
        assert_refused(get_me(token))
        assert attacker_server.requests == 0
        assert jwks_server.requests == 1

    def test_it_never_fetches_an_x5u(self, db, better_auth, signing_key, claims_for, attacker_server):
        attacker = rsa_key("RS256")
        token = attacker.sign(claims_for(iat=int(time.time()) - 60), headers={"x5u": attacker_server.url})
        assert_refused(get_me(token))
        assert attacker_server.requests == 0

    def test_it_refuses_a_token_signed_with_its_own_embedded_jwk(
        self, db, better_auth, signing_key, claims_for, jwks_server
    ):
        attacker = ed25519_key()
        token = attacker.sign(claims_for(iat=int(time.time()) - 60), headers={"jwk": attacker.jwk})
        assert_refused(get_me(token))

    def test_it_refuses_an_embedded_jwk_that_borrows_a_trusted_kid(
        self, db, better_auth, signing_key, claims_for
    ):
        attacker = ed25519_key(kid=signing_key.kid)
        token = attacker.sign(claims_for(), headers={"jwk": attacker.jwk})
        assert_refused(get_me(token))

    def test_it_ignores_key_location_headers_on_a_token_our_key_signed(
        self, db, better_auth, signing_key, claims_for, attacker_server
    ):
        headers = {"jku": attacker_server.url, "x5u": attacker_server.url, "jwk": ed25519_key().jwk}
        response = get_me(signing_key.sign(claims_for("dana"), headers=headers))
        assert response.status_code == HTTPStatus.OK
        assert response.json()["id"] == "dana"
        assert attacker_server.requests == 0


class TestHostileKids:
    @pytest.mark.parametrize(
        "kid",
        [
            "../../etc/passwd",
            "..\\..\\windows\\win.ini",
            "/dev/zero",
            "file:///etc/passwd",
            "' OR 1=1 --",
            '" OR ""="',
            "1; DROP TABLE tasks_task; --",
            '{"$ne": null}',
            "\x00",
            "abc\x00def",
            "\r\nX-Injected: 1",
            "%00",
            "${jndi:ldap://127.0.0.1/x}",
            "k" * 4000,
        ],
        ids=[
            "path",
            "windows-path",
            "device",
            "file-url",
            "sql",
            "sql-quotes",
            "sql-drop",
            "nosql",
            "nul",
            "embedded-nul",
            "crlf",
            "percent-nul",
            "jndi",
            "very-long",
        ],
    )
    def test_it_refuses_a_hostile_kid_without_fetching_again(
        self, db, better_auth, signing_key, claims_for, jwks_server, kid
    ):
        assert get_me(signing_key.sign(claims_for())).status_code == HTTPStatus.OK
        issued_before_the_fetch = int(time.time()) - 60

        for signer in (ed25519_key(kid=kid), ed25519_key()):
            token = sign(
                claims_for(iat=issued_before_the_fetch), signer.private_key, "EdDSA", headers={"kid": kid}
            )
            assert_refused(get_me(token))
        assert jwks_server.requests == 1

    def test_it_refuses_a_hostile_kid_on_a_token_without_iat(
        self, db, better_auth, signing_key, claims_for, jwks_server
    ):
        # No kid like these can be in a JWKS, so no key rotation can explain them: 401, not a 503 to retry.
        assert get_me(signing_key.sign(claims_for())).status_code == HTTPStatus.OK
        for kid in ("../../etc/passwd", "' OR 1=1 --", "\x00"):
            token = sign(claims_for(iat=...), ed25519_key().private_key, "EdDSA", headers={"kid": kid})
            assert_refused(get_me(token))
        assert jwks_server.requests == 1

    @pytest.mark.parametrize("kid", ["0", "1.5", "true", "null", "[]", '["kid"]', '{"kid":"x"}'])
    def test_it_refuses_a_kid_that_is_not_a_string(self, db, better_auth, signing_key, claims_for, kid):
        header = f'{{"alg":"EdDSA","kid":{kid}}}'
        assert_refused(get_me(signed_raw(signing_key, json.dumps(claims_for()), header=header)))


class TestOversizedTokens:
    def test_it_refuses_a_100_kb_token_that_is_not_a_jwt(self, db, better_auth):
        assert_refused(get_me("e" * 100_000))

    def test_it_refuses_a_100_kb_header_segment(self, db, better_auth, signing_key, claims_for):
        token = signing_key.sign(claims_for(), headers={"padding": "x" * 100_000})
        assert_refused(get_me(token))

    def test_it_refuses_a_token_nested_too_deeply_to_parse(self, db, better_auth, signing_key, claims_for):
        claims = json.dumps(claims_for())
        payload = claims[:-1] + ',"deep":' + "[" * 1500 + "]" * 1500 + "}"
        assert_refused(get_me(signed_raw(signing_key, payload)))


class TestDuplicateMembers:
    def test_it_refuses_a_duplicate_kid_in_the_header(self, db, better_auth, signing_key, claims_for):
        header = f'{{"alg":"EdDSA","kid":"{signing_key.kid}","kid":"../../etc/passwd"}}'
        assert_refused(get_me(signed_raw(signing_key, json.dumps(claims_for()), header=header)))

    def test_it_refuses_a_duplicate_expiry_in_the_payload(self, db, better_auth, signing_key, claims_for):
        payload = json.dumps(claims_for())[:-1] + f',"exp":{int(time.time()) + 10**6}}}'
        assert_refused(get_me(signed_raw(signing_key, payload)))

    def test_it_refuses_a_duplicate_member_in_a_nested_object(self, db, better_auth, signing_key, claims_for):
        payload = json.dumps(claims_for())[:-1] + ',"user":{"role":"user","role":"admin"}}'
        assert_refused(get_me(signed_raw(signing_key, payload)))

    def test_it_refuses_a_duplicate_member_in_a_nested_header_object(
        self, db, better_auth, signing_key, claims_for
    ):
        header = f'{{"alg":"EdDSA","kid":"{signing_key.kid}","jwk":{{"kty":"OKP","kty":"RSA"}}}}'
        assert_refused(get_me(signed_raw(signing_key, json.dumps(claims_for()), header=header)))


def claims_text(claims_for, **raw_members):
    """The claims as JSON text, with members whose raw JSON value is given (NaN, 1e999, "...")."""
    claims = claims_for(**dict.fromkeys(raw_members, ...))
    members = "".join(f',"{name}":{value}' for name, value in raw_members.items())
    return json.dumps(claims)[:-1] + members + "}"


class TestTimeClaims:
    """NumericDate claims: a number of seconds, integer or not (RFC 7519); nothing else."""

    def test_it_accepts_a_fractional_expiry_in_the_future(self, db, better_auth, signing_key, claims_for):
        token = signing_key.sign(claims_for("erin", exp=time.time() + 300.5))
        assert get_me(token).status_code == HTTPStatus.OK

    @pytest.mark.parametrize("claim", ["iat", "nbf"])
    def test_it_accepts_a_fractional_past_iat_or_nbf(self, db, better_auth, signing_key, claims_for, claim):
        token = signing_key.sign(claims_for("erin", **{claim: time.time() - 30.25}))
        assert get_me(token).status_code == HTTPStatus.OK

    @pytest.mark.parametrize(
        "value",
        ['"9999999999"', '"1e10"', '""', "true", "null", "[]", "{}"],
        ids=["digits", "exponent-string", "empty", "bool", "null", "array", "object"],
    )
    @pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
    def test_it_refuses_a_time_claim_that_is_not_a_number(
        self, db, better_auth, signing_key, claims_for, claim, value
    ):
        if claim == "exp" or value != "null":  # null iat/nbf is an absent claim, like a missing one
            assert_refused(get_me(signed_raw(signing_key, claims_text(claims_for, **{claim: value}))))

    @pytest.mark.parametrize(
        "value",
        ["NaN", "Infinity", "-Infinity", "1e999", "1" + "0" * 5000],
        ids=["nan", "infinity", "minus-infinity", "overflowing-float", "5000-digits"],
    )
    @pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
    def test_it_refuses_a_time_claim_that_is_not_finite(
        self, db, better_auth, signing_key, claims_for, claim, value
    ):
        assert_refused(get_me(signed_raw(signing_key, claims_text(claims_for, **{claim: value}))))

    @pytest.mark.parametrize(
        "value", [str(10**20), "1e300", "253402300800"], ids=["huge", "huge-float", "year-10000"]
    )
    @pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
    def test_it_refuses_a_time_claim_past_the_year_9999(
        self, db, better_auth, signing_key, claims_for, claim, value
    ):
        assert_refused(get_me(signed_raw(signing_key, claims_text(claims_for, **{claim: value}))))

    @pytest.mark.parametrize("value", ["-1", "-1.5", "-9999999999"])
    @pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
    def test_it_refuses_a_negative_time_claim(self, db, better_auth, signing_key, claims_for, claim, value):
        assert_refused(get_me(signed_raw(signing_key, claims_text(claims_for, **{claim: value}))))
