"""The DRF authentication class: `Authorization: Bearer <Better Auth JWT>` to a local user."""
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication

from authbridge.keys import KeysUnavailable
from authbridge.users import user_for_claims
from authbridge.verifier import InvalidToken, get_verifier


class InvalidBearerToken(exceptions.AuthenticationFailed):
    """401 with `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750)."""

    default_code = "invalid_token"
    www_authenticate = 'Bearer error="invalid_token"'


class SigningKeysUnavailable(exceptions.APIException):
    status_code = 503
    default_detail = "The token's signing key cannot be checked right now. Retry shortly."
    default_code = "keys_unavailable"
    retry_after_seconds = 10


class BetterAuthJWTAuthentication(BaseAuthentication):
    """Only the Authorization header is read: tokens in the query string are never accepted."""

    scheme = "bearer"

    def authenticate(self, request):
        scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != self.scheme:
            return None
        token = token.strip()
        if not token or " " in token:
            raise InvalidBearerToken("The bearer token is malformed.")
        try:
            claims = get_verifier().verify(token)
        except InvalidToken as error:
            raise InvalidBearerToken(f"Invalid token: {error}.") from error
        except KeysUnavailable as error:
            raise SigningKeysUnavailable() from error
        return user_for_claims(claims), claims

    def authenticate_header(self, request):
        return "Bearer"
