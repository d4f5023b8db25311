"""Shared fixtures: signing keys, a JWKS served on 127.0.0.1 by the test itself, tokens, alice and bob.

The code behind them lives in tests/support/; JWKSServer is imported here for the test modules that
take it from this one.
"""

import functools
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import OKPAlgorithm, get_default_algorithms
from rest_framework.test import APIClient

from authbridge import verifier
from authbridge.authentication import token_cache
from authbridge.keys import JWKSCache
from tests.support.clock import FakeClock
from tests.support.jwks import JWKSServer

SECRET = "test-only-shared-secret-of-at-least-32-chars"


class KeyPair:
    """A private key and the public JWK Better Auth would publish for it."""

    def __init__(self, private_key, alg, kid=None):
        self.private_key = private_key
        self.alg = alg
        self.kid = kid or uuid.uuid4().hex
        public_jwk = json.loads(get_default_algorithms()[alg].to_jwk(private_key.public_key()))
        self.jwk = {**public_jwk, "alg": alg, "kid": self.kid}

    def sign(self, claims, headers=None, alg=None):
        return sign(claims, self.private_key, alg or self.alg, headers={"kid": self.kid, **(headers or {})})


def sign(claims, private_key, alg, headers=None):
    """Signs like Better Auth does, also under RFC 9864's `Ed25519` label, which PyJWT lacks."""
    jws = jwt.PyJWS()
    jws.register_algorithm("Ed25519", OKPAlgorithm())
    payload = json.dumps(claims, separators=(",", ":")).encode()
    return jws.encode(payload, private_key, algorithm=alg, headers=headers)


def ed25519_key(kid=None):
    return KeyPair(ed25519.Ed25519PrivateKey.generate(), "EdDSA", kid)


def ec_key(alg="ES256", kid=None):
    curve = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}[alg]
    return KeyPair(ec.generate_private_key(curve), alg, kid)


def rsa_key(alg="RS256", kid=None):
    return KeyPair(rsa.generate_private_key(public_exponent=65537, key_size=2048), alg, kid)


@pytest.fixture
def jwks_server():
    server = JWKSServer()
    yield server
    server.stop()


@pytest.fixture
def signing_key(jwks_server):
    key = ed25519_key()
    jwks_server.publish(key)
    return key


@pytest.fixture
def better_auth(settings, jwks_server):
    """Our API configured as for a Better Auth server at the JWKS server's origin."""
    settings.BETTER_AUTH = {
        "JWKS_URL": jwks_server.url,
        "ISSUER": jwks_server.origin,
        "AUDIENCE": jwks_server.origin,
        "SECRET": SECRET,
        "LEEWAY_SECONDS": 10,
        "JWKS_TTL_SECONDS": 300,
        "JWKS_REFETCH_INTERVAL_SECONDS": 10,
        "JWKS_TIMEOUT_SECONDS": 1,
    }
    return settings.BETTER_AUTH


@pytest.fixture
def jwks_clock(monkeypatch, better_auth):
    """The clock of the JWKS cache the verifier builds next: TTLs and refetch intervals pass when
    the test advances it, never by sleeping."""
    clock = FakeClock(time.monotonic())
    monkeypatch.setattr(verifier, "JWKSCache", functools.partial(JWKSCache, clock=clock))
    return clock


@pytest.fixture
def token_cache_clock(monkeypatch):
    """The token cache's clock (epoch seconds, like a token's exp), advanced by the test."""
    clock = FakeClock(time.time())
    monkeypatch.setattr(token_cache, "clock", clock)
    return clock


@pytest.fixture
def claims_for(jwks_server):
    """Claims shaped like Better Auth's: the user record plus sub, iat, exp, iss and aud."""

    def make(sub=None, **overrides):
        sub = sub or uuid.uuid4().hex
        now = int(time.time())
        claims = {
            "id": sub,
            "email": f"{sub[:8]}@example.com",
            "name": f"User {sub[:8]}",
            "emailVerified": False,
            "image": None,
            "createdAt": "2026-11-27T00:00:00.000Z",
            "updatedAt": "2026-11-27T00:00:00.000Z",
            "sub": sub,
            "iat": now,
            "exp": now + 900,
            "iss": jwks_server.origin,
            "aud": jwks_server.origin,
        }
        claims.update(overrides)
        return {name: value for name, value in claims.items() if value is not ...}

    return make


@pytest.fixture
def token_for(better_auth, signing_key, claims_for):
    def make(sub=None, **overrides):
        return signing_key.sign(claims_for(sub, **overrides))

    return make


def client_with(token=None):
    client = APIClient()
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def alice_sub():
    return "alice" + uuid.uuid4().hex[:27]


@pytest.fixture
def bob_sub():
    return "bob" + uuid.uuid4().hex[:29]


@pytest.fixture
def alice(db, token_for, alice_sub):
    client = client_with(token_for(alice_sub, email="alice@example.com", name="Alice"))
    client.sub = alice_sub
    return client


@pytest.fixture
def bob(db, token_for, bob_sub):
    client = client_with(token_for(bob_sub, email="bob@example.com", name="Bob"))
    client.sub = bob_sub
    return client


@pytest.fixture
def anonymous(db):
    return client_with()


@pytest.fixture(scope="session", autouse=True)
def plain_static_files():
    """The suite runs without collectstatic: no manifest for hashed names, no STATIC_ROOT for WhiteNoise.

    tests/test_dockerfile.py checks the production storage, after a real collectstatic.
    """
    from django.test import override_settings

    with override_settings(
        STATIC_ROOT=None,
        STORAGES={
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        },
    ):
        yield


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """On SQLite, a test database in a file rather than shared-cache memory: concurrent writers then
    wait for the lock, as they do in a real deployment, instead of failing at once."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        database.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("sqlite") / "test.sqlite3")
