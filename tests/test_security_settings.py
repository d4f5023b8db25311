"""Behind a TLS proxy: redirect, HSTS and secure cookies by environment; `check --deploy` is clean."""

import json
import subprocess
import sys
from http import HTTPStatus

import pytest
from django.test import Client

from tests.processes import REPO, clean_env

PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "pr0duction-" * 6,
    "DJANGO_ALLOWED_HOSTS": "api.example.com",
}
BEHIND_TLS_PROXY = {
    "DJANGO_SECURE_PROXY_SSL_HEADER": "1",
    "DJANGO_SECURE_SSL_REDIRECT": "1",
    "DJANGO_SECURE_HSTS_SECONDS": "31536000",
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "DJANGO_SECURE_HSTS_PRELOAD": "1",
}


def check_deploy(**variables):
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=clean_env(**variables),
        capture_output=True,
        text=True,
    )


def settings_in(names, **variables):
    code = (
        f"import django, json; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{name: getattr(settings, name, None) for name in {names!r}}}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=clean_env(DJANGO_SETTINGS_MODULE="todo_api.settings", PYTHONPATH=str(REPO), **variables),
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.live
def test_check_deploy_is_clean_for_a_production_deployment_behind_a_tls_proxy():
    result = check_deploy(**PRODUCTION, **BEHIND_TLS_PROXY)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.live
def test_check_deploy_warns_when_tls_settings_are_left_off():
    result = check_deploy(**PRODUCTION)

    assert result.returncode != 0
    for warning in ("security.W004", "security.W008"):
        assert warning in result.stderr


@pytest.mark.live
def test_the_proxy_header_is_trusted_only_when_switched_on():
    assert settings_in(["SECURE_PROXY_SSL_HEADER"], **PRODUCTION) == {"SECURE_PROXY_SSL_HEADER": None}
    assert settings_in(["SECURE_PROXY_SSL_HEADER"], **PRODUCTION, DJANGO_SECURE_PROXY_SSL_HEADER="1") == {
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"]
    }


@pytest.mark.live
def test_cookies_are_secure_unless_debug_is_on():
    names = ["SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"]
    assert settings_in(names, **PRODUCTION) == {"SESSION_COOKIE_SECURE": True, "CSRF_COOKIE_SECURE": True}
    assert settings_in(names, DJANGO_DEBUG="1") == {
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
    }
    assert settings_in(names, **PRODUCTION, DJANGO_SECURE_COOKIES="0") == {
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
    }


@pytest.mark.live
def test_a_bad_tls_value_stops_start_up_naming_the_variable():
    result = check_deploy(**PRODUCTION, DJANGO_SECURE_HSTS_SECONDS="a year")

    assert result.returncode != 0
    assert "DJANGO_SECURE_HSTS_SECONDS must be a int" in result.stderr


@pytest.fixture
def behind_tls_proxy(settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000


def test_plain_http_is_redirected_to_https(db, behind_tls_proxy):
    response = Client().get("/api/v1/tasks?limit=5")

    assert response.status_code == HTTPStatus.MOVED_PERMANENTLY
    assert response["Location"] == "https://testserver/api/v1/tasks?limit=5"


def test_https_through_the_proxy_is_served_with_hsts(alice, behind_tls_proxy):
    response = alice.get("/api/v1/tasks", HTTP_X_FORWARDED_PROTO="https")

    assert response.status_code == HTTPStatus.OK
    assert response["Strict-Transport-Security"] == "max-age=31536000"


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/healthz/", "/readyz/"])
def test_platform_probes_over_plain_http_are_not_redirected(db, behind_tls_proxy, path):
    assert Client().get(path).status_code == HTTPStatus.OK
