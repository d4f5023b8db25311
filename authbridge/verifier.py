"""Verifies Better Auth JWTs: asymmetric ones against the JWKS, HS256 ones with the shared secret."""

import base64
import binascii
import json
import math
import time
from typing import Any, NoReturn

import jwt
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from jwt.algorithms import AllowedPublicKeys, OKPAlgorithm

from authbridge.keys import ASYMMETRIC_ALGORITHMS, JWKSCache, KeyNotFound

# A verified token's payload: JSON, whatever members its issuer put in.
Claims = dict[str, Any]

MAX_TOKEN_LENGTH = 8192
MAX_SUB_LENGTH = 255
# Past the year 9999 a timestamp is not a real expiry.
MAX_TIMESTAMP = 253402300799


class InvalidToken(Exception):
    """The token must not be accepted; the message says why (safe to show the client), `reason` which
    of todo_api.metrics.AUTH_FAILURE_REASONS it is."""

    def __init__(self, message: str, reason: str = "malformed") -> None:
        super().__init__(message)
        self.reason = reason


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    names = [name for name, _ in pairs]
    if len(names) != len(set(names)):
        raise InvalidToken("duplicate member in token JSON")
    return dict(pairs)


def _reject_constant(name: str) -> NoReturn:
    raise InvalidToken(f"{name} is not valid in token JSON")


def _strict_json_object(raw: str | bytes, part: str) -> dict[str, Any]:
    try:
        value = json.loads(raw, object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:
        raise InvalidToken(f"the token {part} is not valid JSON") from error
    if not isinstance(value, dict):
        raise InvalidToken(f"the token {part} is not a JSON object")
    return value


def _decode_segment(segment: str, part: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as error:
        raise InvalidToken(f"the token {part} is not base64url") from error


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _numeric_date(claims: Claims, name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if not _is_number(value):
        raise InvalidToken(f"the {name} claim must be a number", "claims")
    if not 0 <= value <= MAX_TIMESTAMP:
        raise InvalidToken(f"the {name} claim is out of range", "claims")
    return value


class TokenVerifier:
    def __init__(
        self,
        *,
        issuer: str | None,
        audience: str | None,
        secret: str | None,
        leeway: float,
        jwks_cache: JWKSCache | None,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.secret = secret
        self.leeway = leeway
        self.jwks = jwks_cache
        self._jws = jwt.PyJWS(algorithms=sorted(ASYMMETRIC_ALGORITHMS - {"Ed25519"} | {"HS256"}))
        # RFC 9864 names Ed25519 signatures "Ed25519"; the key check is the same as EdDSA's.
        self._jws.register_algorithm("Ed25519", OKPAlgorithm())

    def keys_version(self) -> int:
        """Changes whenever the trusted keys change; cached verdicts are valid for one version."""
        return self.jwks.current_version() if self.jwks else 0

    def verify(self, token: str) -> Claims:
        """The token's claims when it is valid; raises InvalidToken or KeysUnavailable."""
        header = self._header(token)
        algorithm = header["alg"]
        key = self._key_for(algorithm, header.get("kid"))
        try:
            signed = self._jws.decode_complete(token, key=key, algorithms=[algorithm])
        except jwt.InvalidTokenError as error:
            raise InvalidToken(f"the token was refused: {error}", "bad_signature") from error
        claims = _strict_json_object(signed["payload"], "payload")
        self._check_claims(claims)
        return claims

    def _header(self, token: str) -> dict[str, Any]:
        """The header, once the token is shaped like a JWT: nothing malformed reaches the key set."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken("the token is too long")
        segments = token.split(".")
        if len(segments) != 3:
            raise InvalidToken("the token is not a signed JWT")
        header = _strict_json_object(_decode_segment(segments[0], "header"), "header")
        _strict_json_object(_decode_segment(segments[1], "payload"), "payload")
        if not isinstance(header.get("alg"), str):
            raise InvalidToken("the token header has no algorithm")
        if "crit" in header:
            raise InvalidToken("critical header extensions are not supported")
        if not isinstance(header.get("kid", ""), str):
            raise InvalidToken("the token kid must be a string")
        return header

    def _key_for(self, algorithm: str, kid: str | None) -> AllowedPublicKeys | str:
        if algorithm == "HS256":
            if self.secret is None:
                raise InvalidToken(
                    "HS256 tokens are not accepted: no shared secret is configured", "algorithm"
                )
            return self.secret
        if algorithm not in ASYMMETRIC_ALGORITHMS:
            # Not echoed: the header is the sender's, and may be long.
            raise InvalidToken("the token's algorithm is not accepted", "algorithm")
        if self.jwks is None:
            raise InvalidToken("no JWKS is configured for asymmetric tokens", "algorithm")
        try:
            return self.jwks.key_for(kid, algorithm).public_key
        except KeyNotFound as error:
            raise InvalidToken(str(error), "unknown_key") from error

    def _check_claims(self, claims: Claims) -> None:
        now = time.time()
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub.strip() or len(sub) > MAX_SUB_LENGTH or not sub.isprintable():
            raise InvalidToken("the sub claim must be a printable string of 1 to 255 characters", "claims")
        expires_at = _numeric_date(claims, "exp")
        if expires_at is None:
            raise InvalidToken("the token has no exp claim", "claims")
        if expires_at <= now - self.leeway:
            raise InvalidToken("the token has expired", "expired")
        not_before = _numeric_date(claims, "nbf")
        if not_before is not None and not_before > now + self.leeway:
            raise InvalidToken("the token is not valid yet", "claims")
        issued_at = _numeric_date(claims, "iat")
        if issued_at is not None and issued_at > now + self.leeway:
            raise InvalidToken("the token was issued in the future", "claims")
        if self.issuer is not None and claims.get("iss") != self.issuer:
            raise InvalidToken("the token issuer is not accepted", "claims")
        if self.audience is not None and not self._audience_matches(claims.get("aud")):
            raise InvalidToken("the token audience is not accepted", "claims")

    def _audience_matches(self, audience: object) -> bool:
        if isinstance(audience, str):
            return audience == self.audience
        return isinstance(audience, list) and self.audience in audience


def _build_verifier() -> TokenVerifier:
    config = settings.BETTER_AUTH
    jwks_url = config["JWKS_URL"]
    jwks_cache = None
    if jwks_url:
        jwks_cache = JWKSCache(
            jwks_url,
            ttl=config["JWKS_TTL_SECONDS"],
            refetch_interval=config["JWKS_REFETCH_INTERVAL_SECONDS"],
            timeout=config["JWKS_TIMEOUT_SECONDS"],
        )
    return TokenVerifier(
        issuer=config["ISSUER"],
        audience=config["AUDIENCE"],
        secret=config["SECRET"],
        leeway=config["LEEWAY_SECONDS"],
        jwks_cache=jwks_cache,
    )


_verifier: TokenVerifier | None = None


def get_verifier() -> TokenVerifier:
    """The process-wide verifier; its key cache lives as long as the worker."""
    global _verifier
    if _verifier is None:
        _verifier = _build_verifier()
    return _verifier


@receiver(setting_changed)
def _reset_verifier(setting: str, **kwargs: Any) -> None:
    global _verifier
    if setting == "BETTER_AUTH":
        _verifier = None
