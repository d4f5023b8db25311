"""One JSON line per request, a request id on every line written for it, and nothing secret in the logs."""

import io
import json
import logging
import re
from http import HTTPStatus

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.support.environment import run_in_django
from todo_api.logging import JsonFormatter, RequestIdFilter

PRODUCTION = {"DJANGO_SECRET_KEY": "k" * 50, "DJANGO_ALLOWED_HOSTS": "localhost"}


class Explodes:
    """A middleware that fails the way a bug would, to see what an error leaves in the logs."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        logging.getLogger("tests.explodes").warning("about to fail")
        raise RuntimeError("boom")


@pytest.fixture
def log_lines():
    """The JSON lines the production handler writes, as parsed objects."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    lines = []

    def read():
        lines[:] = [json.loads(line) for line in stream.getvalue().splitlines()]
        return lines

    yield read
    root.removeHandler(handler)


def request_lines(lines):
    return [line for line in lines if line["logger"] == "todo_api.request"]


def test_each_request_writes_one_json_line_with_who_what_and_how_long(alice, log_lines):
    response = alice.get("/api/v1/tasks", HTTP_X_REQUEST_ID="checkout-42.retry_1")

    assert response.status_code == HTTPStatus.OK
    assert response["X-Request-ID"] == "checkout-42.retry_1"
    [line] = request_lines(log_lines())
    assert set(line) == {
        "timestamp",
        "level",
        "logger",
        "message",
        "request_id",
        "method",
        "path",
        "status",
        "duration_ms",
        "user",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["timestamp"])
    assert line["level"] == "INFO"
    assert line["message"] == "GET /api/v1/tasks 200"
    assert (line["request_id"], line["method"], line["path"], line["status"], line["user"]) == (
        "checkout-42.retry_1",
        "GET",
        "/api/v1/tasks",
        200,
        alice.sub,
    )
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0


def test_an_anonymous_request_is_logged_without_a_user(anonymous, log_lines):
    response = anonymous.get("/api/v1/tasks")

    [line] = request_lines(log_lines())
    assert line["status"] == response.status_code == HTTPStatus.UNAUTHORIZED
    assert "user" not in line
    assert line["request_id"] == response["X-Request-ID"]


@pytest.mark.parametrize("offered", ["", "has space", "a" * 129, "new\nline", 'quote"', "ünïcode"])
def test_an_unusable_request_id_is_replaced_by_a_generated_one(anonymous, log_lines, offered):
    response = anonymous.get("/healthz", HTTP_X_REQUEST_ID=offered)

    generated = response["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert request_lines(log_lines())[0]["request_id"] == generated


def test_requests_without_an_id_get_different_ones(anonymous):
    assert anonymous.get("/healthz")["X-Request-ID"] != anonymous.get("/healthz")["X-Request-ID"]


def test_no_token_or_authorization_header_reaches_the_logs(db, token_for, log_lines):
    token, invalid = token_for(), token_for(exp=1)  # the second has expired: refused, and logged
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    client.get("/api/v1/tasks?access_token=" + token)
    client.post("/api/v1/tasks", {"title": token}, format="json")
    Client().get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {invalid}")

    lines = log_lines()
    assert len(request_lines(lines)) == 3
    written = json.dumps(lines)
    for secret in (token, invalid, token.split(".")[1], token.split(".")[2], "Bearer"):
        assert secret not in written


def test_every_line_written_for_a_request_carries_its_id_including_errors(settings, db, log_lines):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{__name__}.Explodes"]

    response = Client(raise_request_exception=False).get("/api/v1/tasks", HTTP_X_REQUEST_ID="trace-me")

    assert response.status_code == HTTPStatus.INTERNAL_SERVER_ERROR
    lines = log_lines()
    assert {line["logger"] for line in lines} == {"tests.explodes", "django.request", "todo_api.request"}
    assert all(line["request_id"] == "trace-me" for line in lines)
    [error] = [line for line in lines if line["logger"] == "django.request"]
    assert error["level"] == "ERROR"
    assert "RuntimeError: boom" in error["exception"]
    assert request_lines(lines)[0]["level"] == "ERROR"


def test_lines_outside_a_request_have_no_request_id(log_lines):
    logging.getLogger("tests").warning("between requests")

    [line] = log_lines()
    assert "request_id" not in line


def log_from_django(debug):
    """What a line logged through settings.LOGGING looks like on stderr, DEBUG on or off."""
    code = (
        "import logging; from todo_api.logging import request_id_var; "
        "request_id_var.set('rid-1'); logging.getLogger('todo_api').warning('hello %s', 'world')"
    )
    result = run_in_django(code, DJANGO_DEBUG=debug, **PRODUCTION)
    assert result.returncode == 0, result.stderr
    return result.stderr.strip()


@pytest.mark.live
def test_logs_are_json_lines_when_debug_is_off():
    line = json.loads(log_from_django("0"))

    assert (line["level"], line["logger"], line["message"], line["request_id"]) == (
        "WARNING",
        "todo_api",
        "hello world",
        "rid-1",
    )


@pytest.mark.live
def test_logs_are_readable_text_when_debug_is_on():
    assert re.fullmatch(r"\S+ \S+ WARNING todo_api \[rid-1\] hello world", log_from_django("1"))
