"""The DRF authentication class: `Authorization: Bearer <Better Auth JWT>` to a local user."""

import logging
from typing import Any, cast

from django.core.signals import setting_changed
from django.dispatch import receiver
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from authbridge.keys import KeysUnavailable
from authbridge.models import User
from authbridge.token_cache import TokenCache
from authbridge.users import user_for_claims
from authbridge.verifier import Claims, InvalidToken, get_verifier
from todo_api.logging import RepeatedErrorLog
from todo_api.metrics import AUTH_FAILURES

token_cache = TokenCache()
KEYS_UNAVAILABLE_LOG = RepeatedErrorLog(
    logging.getLogger(__name__), "Token signing keys unavailable, requests answered 503", interval=60
)


@receiver(setting_changed)
def _forget_tokens(setting: str, **kwargs: Any) -> None:
    if setting == "BETTER_AUTH":
        token_cache.clear()


def caller(request: Request) -> User:
    """The user of a request that passed IsAuthenticated. DRF types `request.user` as possibly
    anonymous; past that permission it is the User that BetterAuthJWTAuthentication returned."""
    return cast(User, request.user)


class InvalidBearerToken(exceptions.AuthenticationFailed):
    """401 with `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750)."""

    default_code = "invalid_token"
    response_headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


class SigningKeysUnavailable(exceptions.APIException):
    status_code = 503
    default_detail = "The token's signing key cannot be checked right now. Retry shortly."
    default_code = "keys_unavailable"

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.response_headers = {"Retry-After": str(retry_after)}


class BetterAuthJWTAuthentication(BaseAuthentication):
    """Only the Authorization header is read: tokens in the query string are never accepted."""

    scheme = "bearer"

    def authenticate(self, request: Request) -> tuple[User, Claims] | None:
        scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != self.scheme:
            # Every view that authenticates requires a user: no bearer token is DRF's 401.
            AUTH_FAILURES.labels("missing").inc()
            return None
        token = token.strip()
        if not token or " " in token:
            AUTH_FAILURES.labels("malformed").inc()
            raise InvalidBearerToken("The bearer token is malformed.")
        verifier = get_verifier()
        cache_key = TokenCache.key(token)
        remembered = token_cache.get(cache_key, verifier.keys_version)
        if remembered is not None:
            return remembered
        try:
            claims = verifier.verify(token)
        except InvalidToken as error:
            AUTH_FAILURES.labels(error.reason).inc()
            raise InvalidBearerToken(f"Invalid token: {error}.") from error
        except KeysUnavailable as error:
            AUTH_FAILURES.labels("keys_unavailable").inc()
            # Any token with an unseen kid gets here while the JWKS is unreachable: one line per interval.
            KEYS_UNAVAILABLE_LOG.record(request._request)
            raise SigningKeysUnavailable(error.retry_after) from error
        user = user_for_claims(claims)
        token_cache.put(cache_key, user, claims, verifier.keys_version())
        return user, claims

    def authenticate_header(self, request: Request) -> str:
        return "Bearer"
