"""Settings come from the environment and a bad value stops start-up, naming the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.environment import clean_env

pytestmark = pytest.mark.live

REPO = Path(__file__).resolve().parent.parent
PRODUCTION = {"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "k" * 50, "DJANGO_ALLOWED_HOSTS": "api.example.com"}


def start_django(**variables):
    """Runs `manage.py check` in a fresh process with exactly these settings variables."""
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO,
        env=clean_env(**variables),
        capture_output=True,
        text=True,
    )


def test_production_settings_start():
    result = start_django(**PRODUCTION)
    assert result.returncode == 0, result.stderr


def test_it_refuses_to_start_without_a_secret_key_when_debug_is_off():
    result = start_django(**{**PRODUCTION, "DJANGO_SECRET_KEY": ""})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off" in result.stderr


def test_it_refuses_to_start_without_allowed_hosts_when_debug_is_off():
    result = start_django(**{**PRODUCTION, "DJANGO_ALLOWED_HOSTS": ""})
    assert result.returncode != 0
    assert "DJANGO_ALLOWED_HOSTS is required" in result.stderr


def test_debug_runs_with_development_defaults():
    assert start_django(DJANGO_DEBUG="1").returncode == 0


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DJANGO_DEBUG", "maybe", "DJANGO_DEBUG must be one of"),
        ("BETTER_AUTH_JWKS_TTL", "soon", "BETTER_AUTH_JWKS_TTL must be a float"),
        ("BETTER_AUTH_LEEWAY", "-1", "BETTER_AUTH_LEEWAY must be at least 0"),
        ("BETTER_AUTH_SECRET", "short", "BETTER_AUTH_SECRET must be at least 32 characters"),
        ("BETTER_AUTH_URL", "file:///etc", "must be an http(s) URL"),
        ("IDEMPOTENCY_KEY_TTL_HOURS", "12", "IDEMPOTENCY_KEY_TTL_HOURS must be at least 24"),
        ("IDEMPOTENCY_KEY_TTL_HOURS", "a day", "IDEMPOTENCY_KEY_TTL_HOURS must be a int"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(name, value, message):
    result = start_django(**{**PRODUCTION, name: value})
    assert result.returncode != 0
    assert message in result.stderr


def test_a_secret_can_come_from_a_file(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("f" * 50 + "\n")
    result = start_django(
        **{**PRODUCTION, "DJANGO_SECRET_KEY": "", "DJANGO_SECRET_KEY_FILE": str(secret_file)}
    )
    assert result.returncode == 0, result.stderr


def test_jwks_url_issuer_and_audience_default_from_better_auth_url():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from django.conf import settings; import django; django.setup(); "
            "auth = settings.BETTER_AUTH; print(auth['JWKS_URL'], auth['ISSUER'], auth['AUDIENCE'])",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            **PRODUCTION,
            "DJANGO_SETTINGS_MODULE": "todo_api.settings",
            "BETTER_AUTH_URL": "https://auth.example.com/",
        },
    )
    assert result.stdout.split() == [
        "https://auth.example.com/api/auth/jwks",
        "https://auth.example.com",
        "https://auth.example.com",
    ]
