"""Declares the bearer scheme in the OpenAPI schema, so Swagger UI's Authorize takes a token."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BetterAuthJWTScheme(OpenApiAuthenticationExtension):
    target_class = "authbridge.authentication.BetterAuthJWTAuthentication"
    name = "BetterAuthJWT"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A JWT issued by Better Auth (EdDSA, ES256/512, RS256, PS256 via its JWKS) "
            "or signed with the shared BETTER_AUTH_SECRET (HS256).",
        }
