"""Prints an HS256 token signed with BETTER_AUTH_SECRET, for trying the API in Swagger UI."""

import time
import uuid
from argparse import ArgumentParser
from typing import Any

import jwt
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Mint a development bearer token (DEBUG only; needs BETTER_AUTH_SECRET)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--sub", default=f"dev-{uuid.uuid4().hex[:12]}", help="the user id (token sub)")
        parser.add_argument("--email", default="dev@example.com")
        parser.add_argument("--name", default="Dev User")
        parser.add_argument("--minutes", type=int, default=60 * 8, help="lifetime in minutes")

    def handle(self, *args: Any, sub: str, email: str, name: str, minutes: int, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("Development tokens are minted only with DJANGO_DEBUG on.")
        config = settings.BETTER_AUTH
        if not config["SECRET"]:
            raise CommandError("Set BETTER_AUTH_SECRET (32+ characters) to mint HS256 development tokens.")
        now = int(time.time())
        claims = {"sub": sub, "email": email, "name": name, "iat": now, "exp": now + minutes * 60}
        claims.update(
            {
                claim: value
                for claim, value in (("iss", config["ISSUER"]), ("aud", config["AUDIENCE"]))
                if value
            }
        )
        self.stdout.write(jwt.encode(claims, str(config["SECRET"]), algorithm="HS256"))
