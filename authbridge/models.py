"""The local user: one row per Better Auth user, created on their first request."""

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    # Better Auth's user id (the token's `sub`). Staff created with createsuperuser have none.
    sub = models.CharField(max_length=255, unique=True, null=True, blank=True, editable=False)
    name = models.CharField(max_length=255, blank=True)
    # Better Auth users are named by their `sub`, which may be longer than Django's 150.
    username = models.CharField(max_length=255, unique=True)

    def __str__(self) -> str:
        return self.email or self.username
