"""gunicorn.conf.py: defaults for the machine, every value from the environment, logs in the app's JSON."""

import json
import os
import secrets
import subprocess
import sys

import pytest

from authbridge.verifier import MAX_TOKEN_LENGTH
from tests.processes import REPO, Gunicorn, clean_env, free_port

pytestmark = pytest.mark.live

CPUS = len(os.sched_getaffinity(0))
# --print-config loads the app, and so the settings.
PRODUCTION = {"DJANGO_SECRET_KEY": "k" * 50, "DJANGO_ALLOWED_HOSTS": "127.0.0.1"}


def gunicorn_config(**variables):
    """The settings gunicorn would run with, as printed by --print-config."""
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--print-config", "todo_api.wsgi"],
        cwd=REPO,
        env=clean_env(**PRODUCTION, **variables),
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        return result.stderr
    pairs = (line.split("=", 1) for line in result.stdout.splitlines() if " = " in line)
    return {name.strip(): value.strip() for name, value in pairs}


def test_the_defaults_suit_a_sync_django_app_on_this_machine():
    config = gunicorn_config()

    assert config["worker_class"] == "gthread"
    assert config["workers"] == str(max(2, CPUS))
    assert config["threads"] == "2"
    assert config["bind"] == "['0.0.0.0:8000']"
    assert (config["keepalive"], config["timeout"], config["graceful_timeout"]) == ("75", "30", "8")
    assert (config["max_requests"], config["accesslog"], config["errorlog"]) == ("0", "None", "-")
    assert config["logger_class"] == "<JsonLogger()>"


def test_the_request_limits_let_the_largest_token_through():
    config = gunicorn_config()

    assert config["limit_request_line"] == "8190"  # gunicorn's maximum
    assert int(config["limit_request_field_size"]) >= len("Authorization: Bearer \r\n") + MAX_TOKEN_LENGTH
    assert config["limit_request_fields"] == "100"


def test_the_platforms_port_is_used():
    assert gunicorn_config(PORT="10000")["bind"] == "['0.0.0.0:10000']"


def test_every_value_comes_from_the_environment():
    config = gunicorn_config(
        GUNICORN_BIND="127.0.0.1:9000",
        GUNICORN_WORKERS="3",
        GUNICORN_THREADS="16",
        GUNICORN_WORKER_CLASS="sync",
        GUNICORN_KEEPALIVE="5",
        GUNICORN_TIMEOUT="60",
        GUNICORN_GRACEFUL_TIMEOUT="20",
        GUNICORN_MAX_REQUESTS="1000",
        GUNICORN_ACCESS_LOG="-",
        LOG_LEVEL="WARNING",
    )

    assert config["bind"] == "['127.0.0.1:9000']"
    assert (config["workers"], config["threads"], config["worker_class"]) == ("3", "16", "sync")
    assert (config["keepalive"], config["timeout"], config["graceful_timeout"]) == ("5", "60", "20")
    assert (config["max_requests"], config["max_requests_jitter"]) == ("1000", "100")
    assert (config["accesslog"], config["loglevel"]) == ("-", "warning")


def test_a_bad_value_stops_start_up_naming_the_variable():
    assert "GUNICORN_WORKERS must be a int; got 'many'" in gunicorn_config(GUNICORN_WORKERS="many")


@pytest.fixture
def server(tmp_path):
    port = free_port()
    env = clean_env(
        **PRODUCTION,
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS="1",
        GUNICORN_ACCESS_LOG="-",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )
    server = Gunicorn.as_in_the_image(env=env, port=port, log_dir=tmp_path)
    yield server
    server.stop()


def test_gunicorn_and_the_app_log_json_lines_with_the_request_id_and_no_token(server):
    token = "eyJhbGciOiJIUzI1NiJ9." + secrets.token_urlsafe(24) + "." + secrets.token_urlsafe(32)
    response = server.get("/api/v1/me", Authorization=f"Bearer {token}", **{"X-Request-ID": "from-the-proxy"})
    assert response.status == 401
    server.stop()

    log = server.log()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "gunicorn.access" and line["path"] == "/api/v1/me"]
    app = [line for line in lines if line["logger"] == "todo_api.request" and line["path"] == "/api/v1/me"]
    assert len(access) == len(app) == 1
    assert {key: access[0][key] for key in ("level", "method", "status", "request_id")} == {
        "level": "INFO",
        "method": "GET",
        "status": 401,
        "request_id": "from-the-proxy",
    }
    assert app[0]["request_id"] == "from-the-proxy"
    assert any(line["message"].startswith("Listening at: http://127.0.0.1:") for line in lines)
    assert token not in log and token.split(".")[2] not in log
