"""A stand-in for Better Auth's JWT plugin, for the benchmark only.

It holds one Ed25519 key, publishes it as a JWKS on 127.0.0.1 at
/api/auth/jwks (tests/support/jwks.py), and mints tokens the way Better Auth does: a compact JWS with
header {"alg":"EdDSA","kid":...} (no "typ"), and a payload that is the user
object (id, email, name, emailVerified, image, createdAt, updatedAt) plus sub
(= id), iat, exp, iss and aud (both the Better Auth base URL).
"""

import base64
import json
import secrets
import string
import time
from datetime import UTC, datetime

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.support.jwks import JWKSServer

ALNUM = string.ascii_letters + string.digits


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def random_id(n=32):
    """Better Auth's ids: n characters of [A-Za-z0-9]."""
    return "".join(secrets.choice(ALNUM) for _ in range(n))


class FakeBetterAuth:
    """One Ed25519 key, published by the tests' JWKS server, and tokens signed with it."""

    def __init__(self):
        self.key = Ed25519PrivateKey.generate()
        self.kid = random_id(32)
        raw = self.key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.jwk = {"alg": "EdDSA", "crv": "Ed25519", "x": b64url(raw), "kty": "OKP", "kid": self.kid}
        self.jwks = JWKSServer()
        self.jwks.publish(self)
        self.url = self.jwks.origin

    @property
    def jwks_hits(self):
        return self.jwks.requests

    def stop(self):
        self.jwks.stop()

    def mint(self, user_id, email, name, ttl_seconds, now=None):
        now = int(time.time() if now is None else now)
        created = datetime.fromtimestamp(now - 86400, UTC).isoformat(timespec="milliseconds")
        created = created.replace("+00:00", "Z")
        header = {"alg": "EdDSA", "kid": self.kid}
        payload = {
            "id": user_id,
            "email": email,
            "name": name,
            "emailVerified": True,
            "image": None,
            "createdAt": created,
            "updatedAt": created,
            "iat": now,
            "exp": now + int(ttl_seconds),
            "iss": self.url,
            "aud": self.url,
            "sub": user_id,
        }
        signing_input = ".".join(
            b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, payload)
        )
        sig = self.key.sign(signing_input.encode("ascii"))
        return f"{signing_input}.{b64url(sig)}"
