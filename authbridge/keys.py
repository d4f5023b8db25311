"""Better Auth's public signing keys: fetched lazily from the JWKS URL and cached in memory.

Only one fetch runs at a time, unknown `kid`s refetch at most once per interval, and the
last good key set is kept while the JWKS server is unreachable.
"""

import http.client
import json
import logging
import math
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from jwt.algorithms import AllowedPublicKeys

from todo_api.metrics import JWKS_FETCHES

logger = logging.getLogger(__name__)

USER_AGENT = "todo-api-authbridge/1.0"
MAX_JWKS_BYTES = 256 * 1024

KeyType = tuple[str | None, str | None]  # (kty, crv); RSA keys have no curve

# Which token algorithms each kind of key may verify. Pinned here, never taken from the token.
ALGORITHMS_BY_KEY_TYPE: dict[KeyType, frozenset[str]] = {
    ("OKP", "Ed25519"): frozenset({"EdDSA", "Ed25519"}),
    ("EC", "P-256"): frozenset({"ES256"}),
    ("EC", "P-384"): frozenset({"ES384"}),
    ("EC", "P-521"): frozenset({"ES512"}),
    ("RSA", None): frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}),
}
# The PyJWT algorithm that loads each kind of key.
KEY_LOADERS: dict[KeyType, str] = {
    ("OKP", "Ed25519"): "EdDSA",
    ("EC", "P-256"): "ES256",
    ("EC", "P-384"): "ES384",
    ("EC", "P-521"): "ES512",
    ("RSA", None): "RS256",
}
ASYMMETRIC_ALGORITHMS: frozenset[str] = frozenset().union(*ALGORITHMS_BY_KEY_TYPE.values())


class KeysUnavailable(Exception):
    """The key a token needs is unknown and the JWKS fetch failed; retry after some seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class KeyNotFound(Exception):
    """The JWKS was fetched and holds no key that fits the token."""


@dataclass(frozen=True)
class TrustedKey:
    kid: str | None
    algorithms: frozenset[str]
    public_key: AllowedPublicKeys

    def fits(self, algorithm: str) -> bool:
        return algorithm in self.algorithms


def _key_type(jwk: dict[str, Any]) -> KeyType:
    kty = jwk.get("kty")
    return (kty, None) if kty == "RSA" else (kty, jwk.get("crv"))


def _allowed_algorithms(jwk: dict[str, Any], key_type: KeyType) -> frozenset[str]:
    allowed = ALGORITHMS_BY_KEY_TYPE[key_type]
    declared = jwk.get("alg")
    if declared is None:
        return allowed
    # A key that names its algorithm verifies that algorithm only (EdDSA and Ed25519 are one).
    if declared not in allowed:
        return frozenset()
    return allowed if key_type[0] == "OKP" else frozenset({declared})


def parse_jwks(document: Any) -> list[TrustedKey]:
    """The usable signing keys of a JWKS document; anything malformed is skipped."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("a JWKS must be an object with a list of keys")
    keys: list[TrustedKey] = []
    for jwk in document["keys"]:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
            continue
        key_type = _key_type(jwk)
        if key_type not in ALGORITHMS_BY_KEY_TYPE:
            continue
        algorithms = _allowed_algorithms(jwk, key_type)
        kid = jwk.get("kid")
        if not algorithms or not isinstance(kid, (str, type(None))):
            continue
        try:
            public_key = jwt.PyJWK(jwk, algorithm=KEY_LOADERS[key_type]).key
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError) as error:
            logger.warning("Skipping an unusable JWKS key %r: %s", kid, error)
            continue
        keys.append(TrustedKey(kid=kid, algorithms=algorithms, public_key=public_key))
    return keys


class JWKSCache:
    def __init__(
        self,
        url: str,
        ttl: float,
        refetch_interval: float,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock  # seconds for the TTL and refetch intervals (tests pass their own)
        self.url = url
        self.ttl = ttl
        self.refetch_interval = refetch_interval
        self.timeout = timeout
        self._keys: list[TrustedKey] = []
        self._fetched_at: float | None = None  # when the last good set arrived (by self.clock)
        self._attempted_at: float | None = None  # when the last fetch started, good or not
        self._last_fetch_failed = False
        self._lock = threading.Lock()
        self.version = 0  # grows each time the key set is replaced

    def current_version(self) -> int:
        """The version of the key set, refreshed first if its TTL has passed."""
        if self._is_stale():
            self._refresh(wait=False)
        return self.version

    def key_for(self, kid: str | None, algorithm: str) -> TrustedKey:
        """The cached key that may verify a token with this `kid` and `alg`, fetching if needed.

        An unknown kid is a KeyNotFound whenever the last fetch succeeded, even if a refetch must
        wait: the sender chooses the kid (and iat), so an answer it could turn into a 5xx at will
        would let anyone make a healthy replica look broken. A key rotated in since that fetch is
        refused until the next allowed refetch (at most `refetch_interval` seconds).
        """
        if self._is_stale():
            self._refresh(wait=False)
        key = self._find(kid, algorithm)
        if key is None:
            self._refresh(wait=True)
            key = self._find(kid, algorithm)
        if key is not None:
            return key
        if self._fetched_at is None or self._last_fetch_failed:
            raise KeysUnavailable("the signing keys could not be fetched", self._seconds_until_refetch())
        raise KeyNotFound("no signing key matches the token")

    def _seconds_until_refetch(self) -> int:
        waited = self.clock() - (self._attempted_at or 0)
        return max(1, math.ceil(self.refetch_interval - waited))

    def _find(self, kid: str | None, algorithm: str) -> TrustedKey | None:
        """The key for this kid and alg, or None when the set has no such kid (it may be new)."""
        if kid is None:
            # Tokens without a kid are accepted only when one key could have signed them.
            fitting = [key for key in self._keys if key.fits(algorithm)]
            if len(fitting) > 1:
                raise KeyNotFound("several keys fit a token without kid")
            return fitting[0] if fitting else None
        key = next((key for key in self._keys if key.kid == kid), None)
        if key is not None and not key.fits(algorithm):
            raise KeyNotFound(f"the token's key does not verify {algorithm}")
        return key

    def _is_stale(self) -> bool:
        return self._fetched_at is None or self.clock() - self._fetched_at > self.ttl

    def _refresh(self, wait: bool) -> None:
        if not self._lock.acquire(blocking=wait):
            return  # a fetch is already running; the caller uses the current set
        try:
            now = self.clock()
            if self._attempted_at is not None and now - self._attempted_at < self.refetch_interval:
                return
            self._attempted_at = now
            try:
                keys = parse_jwks(self._download())
            except (OSError, ValueError, http.client.HTTPException) as error:
                JWKS_FETCHES.labels("failure").inc()
                self._last_fetch_failed = True
                logger.warning(
                    "JWKS fetch from %s failed; keeping %d cached keys: %s", self.url, len(self._keys), error
                )
                return
            JWKS_FETCHES.labels("success").inc()
            # Replaced, not merged: a key removed from the JWKS stops being accepted.
            self._keys, self._fetched_at, self._last_fetch_failed = keys, now, False
            self.version += 1
        finally:
            self._lock.release()

    def _download(self) -> Any:
        request = urllib.request.Request(  # noqa: S310 (settings allow only http(s) URLs)
            self.url, headers={"User-Agent": USER_AGENT, "Accept": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (configured URL)
            body = response.read(MAX_JWKS_BYTES + 1)
        if len(body) > MAX_JWKS_BYTES:
            raise ValueError(f"the JWKS is larger than {MAX_JWKS_BYTES} bytes")
        return json.loads(body)
