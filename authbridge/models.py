"""The local user: one row per Better Auth user, created on their first request."""

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    # Better Auth's user id (the token's `sub`). Staff created with createsuperuser have none.
    sub = models.CharField(max_length=255, unique=True, null=True, blank=True, editable=False)
    name = models.CharField(max_length=255, blank=True)
    # Better Auth's `emailVerified`: whether the email was proven to belong to this user. A token may
    # carry anyone's email and name; only the `sub` is theirs alone.
    email_verified = models.BooleanField(default=False)
    # Better Auth users are named by their `sub`, which may be longer than Django's 150.
    username = models.CharField(max_length=255, unique=True)

    def __str__(self) -> str:
        """How the admin names a user everywhere (owner columns, autocomplete, filters): email and name
        can be copied from anyone, so the Better Auth id is always beside them."""
        if self.sub is None:  # a staff account of createsuperuser
            return self.email or self.username
        email = self.email or "no email"
        if self.email and not self.email_verified:
            email += " (unverified)"
        return f"{self.name} <{email}> · id {self.sub}" if self.name else f"{email} · id {self.sub}"
