"""The error examples in the OpenAPI schema are the bodies the API really sends."""

import time
from datetime import timedelta
from http import HTTPStatus
from types import SimpleNamespace

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from authbridge.models import User
from tasks.changes import purge_before
from tests.conftest import client_with
from todo_api import throttling
from todo_api.schema import ERRORS, RESPONSE_HEADERS, THROTTLED_EXAMPLE_WAIT

EXAMPLES = {case.name: case for case in ERRORS}


@pytest.fixture
def task(alice):
    return alice.post("/api/v1/tasks", {"title": "Buy oat milk"}, format="json").json()


def provoke(name, alice, bob, task, token_for):
    """The response to a request that runs into the error case `name`."""
    detail = f"/api/v1/tasks/{task['id']}"
    if name == "parse_error":
        return alice.generic("POST", "/api/v1/tasks", "{", content_type="application/json")
    if name == "invalid_body":
        return alice.post("/api/v1/tasks", {"title": "x" * 201}, format="json")
    if name == "invalid_query":
        return alice.get("/api/v1/tasks?completed=maybe")
    if name == "not_authenticated":
        return client_with().get("/api/v1/tasks")
    if name == "invalid_token":
        return client_with(token_for(exp=int(time.time()) - 3600)).get("/api/v1/tasks")
    if name == "account_disabled":
        User.objects.create(sub="gone", username="gone", is_active=False)
        return client_with(token_for("gone")).get("/api/v1/me")
    if name == "not_your_user_id":
        return bob.get(f"/api/{alice.sub}/tasks")
    if name == "not_found":
        return bob.get(detail)
    if name == "payload_too_large":
        return alice.generic("POST", "/api/v1/tasks", "x" * 70000, content_type="application/json")
    if name == "unsupported_media_type":
        return alice.generic("POST", "/api/v1/tasks", "title=x", content_type="text/plain")
    if name == "invalid_cursor":
        return alice.get("/api/v1/changes?cursor=forged")
    if name == "cursor_expired":
        return expired_cursor_poll(alice)
    if name == "host_not_allowed":
        return client_with().get("/healthz", HTTP_HOST="evil.example")
    raise AssertionError(f"no request provokes {name}")


def expired_cursor_poll(client):
    cursor = client.get("/api/v1/changes").json()["cursor"]
    client.post("/api/v1/tasks", {"title": "Long ago"}, format="json")
    purge_before(timezone.now() + timedelta(seconds=1))
    return client.get("/api/v1/changes", {"cursor": cursor})


# The rest need an outage or a chunked upload, which tests/test_database_outage.py,
# tests/test_jwks_cache.py and tests/test_input_limits.py provoke against the same messages.
PROVOKED = [
    "parse_error",
    "invalid_body",
    "invalid_query",
    "not_authenticated",
    "invalid_token",
    "account_disabled",
    "not_your_user_id",
    "not_found",
    "payload_too_large",
    "unsupported_media_type",
    "host_not_allowed",
    "invalid_cursor",
    "cursor_expired",
]


@pytest.mark.parametrize("name", PROVOKED)
def test_the_error_example_is_the_body_the_api_sends(name, alice, bob, task, token_for):
    case = EXAMPLES[name]

    response = provoke(name, alice, bob, task, token_for)

    assert response.status_code == case.status
    expected = {"status": case.status, "code": case.code, "message": case.message}
    if case.fields is not None:
        expected["fields"] = case.fields
    assert response.json() == expected


def test_the_429_example_is_a_real_throttled_answer_with_its_wait(alice, settings, monkeypatch):
    case = EXAMPLES["throttled"]
    settings.API_USER_RATE, settings.REDIS_URL, settings.API_USER_RATE_FILE = (1, 60), None, None
    # A moment 42 s before a minute's end: the wait the throttle computes is the example's.
    moment = 1_800_000_000 - 1_800_000_000 % 60 + 60 - THROTTLED_EXAMPLE_WAIT
    monkeypatch.setattr(throttling, "time", SimpleNamespace(time=lambda: moment, monotonic=time.monotonic))

    assert alice.get("/api/v1/me").status_code == HTTPStatus.OK
    response = alice.get("/api/v1/me")

    assert response.status_code == case.status
    assert response.json() == {"status": case.status, "code": case.code, "message": case.message}
    assert response["Retry-After"] == str(RESPONSE_HEADERS[429]["Retry-After"]["schema"]["example"])


def test_the_body_of_an_unknown_api_path_is_json_with_debug_on(settings, alice):
    settings.DEBUG = True

    response = alice.get("/api/v1/nothing-here")

    assert response.status_code == HTTPStatus.NOT_FOUND, response.json()
    assert response.json() == {"status": 404, "code": "not_found", "message": "Not Found."}


@pytest.mark.parametrize(
    "path", ["/api/", "/api/v1/tasks/1/nope", "/api/v1/tasks/abc", "/api/alice/tasks/1/delete"]
)
@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_unknown_api_paths_answer_json_404_with_debug_on(settings, path, method):
    settings.DEBUG = True
    browser_like = APIClient(enforce_csrf_checks=True)

    response = getattr(browser_like, method)(path)

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"
