"""Every error is JSON of one shape, {"status", "code", "message"} (+ "fields"), whatever refused it."""

import json
from http import HTTPStatus

import pytest
from rest_framework.test import APIClient

from tasks.models import Task


def assert_error_shape(response, status):
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert not response.content.lstrip().startswith(b"<")
    body = json.loads(response.content)
    assert set(body) - {"fields"} == {"status", "code", "message"}
    assert body["status"] == status
    assert isinstance(body["code"], str) and body["code"]
    assert isinstance(body["message"], str) and body["message"]
    if "fields" in body:
        assert isinstance(body["fields"], dict) and body["fields"]
        assert all(
            isinstance(messages, list) and all(isinstance(m, str) for m in messages)
            for messages in body["fields"].values()
        )
    return body


def test_a_validation_error_names_the_fields(alice):
    response = alice.post("/api/v1/tasks", {"title": "", "completed": "yes"}, format="json")

    body = assert_error_shape(response, HTTPStatus.BAD_REQUEST)
    assert body == {
        "status": 400,
        "code": "invalid",
        "message": "The request has invalid fields.",
        "fields": {"title": ["This field may not be blank."], "completed": ["Must be a valid boolean."]},
    }


def test_a_parse_error_has_no_fields(alice):
    response = alice.generic("POST", "/api/v1/tasks", data=b"{", content_type="application/json")

    body = assert_error_shape(response, HTTPStatus.BAD_REQUEST)
    assert body["code"] == "parse_error" and "fields" not in body


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/api/v1/tasks"),
        ("POST", "/api/v1/tasks"),
        ("GET", "/api/v1/tasks/1"),
        ("PUT", "/api/v1/tasks/1"),
        ("PATCH", "/api/v1/tasks/1"),
        ("DELETE", "/api/v1/tasks/1"),
        ("GET", "/api/v1/me"),
        ("GET", "/api/v1/tasks/"),
        ("GET", "/api/someone/tasks"),
        ("PATCH", "/api/someone/tasks/1/complete"),
    ],
)
def test_a_request_without_a_token_is_401_with_a_bearer_challenge(anonymous, method, path):
    response = anonymous.generic(method, path, data=b'{"title": "t"}', content_type="application/json")

    body = assert_error_shape(response, HTTPStatus.UNAUTHORIZED)
    assert body == {
        "status": 401,
        "code": "not_authenticated",
        "message": "Authentication credentials were not provided.",
    }
    assert response["WWW-Authenticate"] == "Bearer"
    assert Task.objects.count() == 0


@pytest.mark.parametrize("parameter", ["token", "access_token", "jwt", "auth"])
def test_a_token_in_the_query_string_is_not_accepted(anonymous, token_for, alice_sub, parameter):
    token = token_for(alice_sub)

    listed = anonymous.get(f"/api/v1/tasks?{parameter}={token}")
    created = anonymous.post(f"/api/v1/tasks?{parameter}={token}", {"title": "t"}, format="json")

    for response in (listed, created):
        assert assert_error_shape(response, HTTPStatus.UNAUTHORIZED)["code"] == "not_authenticated"
        assert response["WWW-Authenticate"] == "Bearer"
    assert Task.objects.count() == 0


def test_an_invalid_token_is_401_with_an_invalid_token_challenge(db, better_auth, signing_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not.a.jwt")

    response = client.get("/api/v1/tasks")

    assert assert_error_shape(response, HTTPStatus.UNAUTHORIZED)["code"] == "invalid_token"
    assert response["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_another_users_path_is_403(alice):
    response = alice.get("/api/someone-else/tasks")

    assert assert_error_shape(response, HTTPStatus.FORBIDDEN) == {
        "status": 403,
        "code": "permission_denied",
        "message": "The user id in the path is not yours.",
    }


@pytest.mark.parametrize(
    "path",
    [
        "/api/nope",
        "/api/nope/",
        "/api/v1/nope",
        "/api/v1/",
        "/api/",
        "/api/v1/tasks/1/extra",
        "/nope",
        "/api/v1/tasks/abc",
        "/api/v1/tasks/1.5",
        "/api/v1/tasks/-1",
        "/api/v1/tasks/" + "9" * 30,
        "/api/v1/tasks/%F0%9F%98%80",
        "/api/someone/tasks/abc",
        "/api/someone/tasks/" + "1" * 30 + "/complete",
    ],
)
def test_an_unknown_path_is_a_json_404(alice, path):
    response = alice.get(path)

    assert assert_error_shape(response, HTTPStatus.NOT_FOUND) == {
        "status": 404,
        "code": "not_found",
        "message": "Not Found.",
    }


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_a_method_a_list_does_not_support_is_a_json_405(alice, method):
    response = alice.generic(method, "/api/v1/tasks")

    assert assert_error_shape(response, HTTPStatus.METHOD_NOT_ALLOWED) == {
        "status": 405,
        "code": "method_not_allowed",
        "message": f'Method "{method}" not allowed.',
    }
    assert "GET" in response["Allow"] and "POST" in response["Allow"]


@pytest.mark.parametrize("method", ["FOO", "TRACE", "PROPFIND", "CONNECT"])
@pytest.mark.parametrize(
    "path", ["/api/v1/tasks", "/api/v1/tasks/1", "/api/{sub}/tasks/1/complete", "/api/v1/me"]
)
def test_an_unknown_method_is_a_json_405(alice, method, path):
    response = alice.generic(method, path.format(sub=alice.sub))

    assert assert_error_shape(response, HTTPStatus.METHOD_NOT_ALLOWED) == {
        "status": 405,
        "code": "method_not_allowed",
        "message": f'Method "{method}" not allowed.',
    }


def test_a_post_to_a_probe_is_a_json_405(anonymous):
    response = anonymous.post("/healthz")

    assert assert_error_shape(response, HTTPStatus.METHOD_NOT_ALLOWED)["code"] == "method_not_allowed"


def test_a_body_over_the_limit_is_a_json_413_even_without_a_token(anonymous):
    response = anonymous.generic(
        "POST", "/api/v1/tasks", data=b" " * (64 * 1024 + 1), content_type="application/json"
    )

    assert assert_error_shape(response, HTTPStatus.REQUEST_ENTITY_TOO_LARGE)["code"] == "payload_too_large"


def test_a_body_that_is_not_json_is_a_json_415(alice):
    response = alice.generic(
        "POST", "/api/v1/tasks", data=b"title=t", content_type="application/x-www-form-urlencoded"
    )

    assert assert_error_shape(response, HTTPStatus.UNSUPPORTED_MEDIA_TYPE) == {
        "status": 415,
        "code": "unsupported_media_type",
        "message": 'Unsupported media type "application/x-www-form-urlencoded" in request.',
    }
