"""The development token command: DEBUG only, and its tokens pass our own verifier."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from authbridge.verifier import get_verifier


def mint(*arguments):
    output = StringIO()
    call_command("mint_dev_token", *arguments, stdout=output)
    return output.getvalue().strip()


def test_it_mints_a_token_the_api_accepts(settings, better_auth):
    settings.DEBUG = True
    claims = get_verifier().verify(mint("--sub", "dev-user", "--name", "Dev"))
    assert (claims["sub"], claims["name"], claims["iss"], claims["aud"]) == (
        "dev-user",
        "Dev",
        better_auth["ISSUER"],
        better_auth["AUDIENCE"],
    )


def test_it_refuses_when_debug_is_off(settings, better_auth):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="only with DJANGO_DEBUG on"):
        mint()


def test_it_refuses_without_a_shared_secret(settings, better_auth):
    settings.DEBUG = True
    settings.BETTER_AUTH = {**better_auth, "SECRET": None}
    with pytest.raises(CommandError, match="Set BETTER_AUTH_SECRET"):
        mint()
