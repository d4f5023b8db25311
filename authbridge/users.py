"""Maps a verified token to the local user, creating it just in time."""

from typing import Any

from django.contrib.auth.hashers import make_password
from django.db import IntegrityError
from rest_framework import exceptions

from authbridge.models import User


def _clean_text(value: object, max_length: int | None) -> str:
    """A claim as text the database will take: a string, without NULs, within the column."""
    if not isinstance(value, str):
        return ""
    return value.replace("\x00", "")[:max_length]


def user_for_claims(claims: dict[str, Any]) -> User:
    """The local user for a verified token's `sub`; email, name and email_verified follow the token."""
    profile = {
        "email": _clean_text(claims.get("email"), User._meta.get_field("email").max_length),
        "name": _clean_text(claims.get("name"), User._meta.get_field("name").max_length),
        # Better Auth's claim; OpenID Connect's name for it from other issuers. Only a JSON true counts.
        "email_verified": claims.get("emailVerified", claims.get("email_verified")) is True,
    }
    sub = claims["sub"]
    try:
        # get_or_create retries the read when a concurrent first request won the insert.
        # No password: these users sign in with Better Auth, never with Django's login.
        defaults = {"username": sub, "password": make_password(None), **profile}
        user, created = User.objects.get_or_create(sub=sub, defaults=defaults)
    except IntegrityError as error:
        # The `sub` is free but a staff account already uses it as its username.
        raise exceptions.PermissionDenied("This account conflicts with a local account.") from error
    if not created and any(getattr(user, field) != value for field, value in profile.items()):
        for field, value in profile.items():
            setattr(user, field, value)
        user.save(update_fields=list(profile))
    if not user.is_active:
        raise exceptions.PermissionDenied("This account is disabled.")
    return user
