"""Browsers on an allowed origin may call /api/, preflights included; other origins get no CORS headers."""

from http import HTTPStatus

import pytest
from django.test import Client

FRONTEND = "https://app.example.com"


@pytest.fixture(autouse=True)
def allowed_origin(settings):
    settings.CORS_ALLOWED_ORIGINS = [FRONTEND]


def preflight(path, method, origin=FRONTEND):
    return Client().options(
        path,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type",
    )


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/api/v1/tasks/1", "PATCH"),
        ("/api/v1/tasks/1", "DELETE"),
        ("/api/v1/tasks", "POST"),
        ("/api/alice/tasks/1/complete", "PATCH"),
    ],
)
def test_a_preflight_from_an_allowed_origin_allows_the_method_and_the_authorization_header(db, path, method):
    response = preflight(path, method)

    assert response.status_code == HTTPStatus.OK
    assert response["Access-Control-Allow-Origin"] == FRONTEND
    assert method in response["Access-Control-Allow-Methods"].split(", ")
    allowed_headers = response["Access-Control-Allow-Headers"].split(", ")
    assert "authorization" in allowed_headers
    assert "content-type" in allowed_headers
    assert int(response["Access-Control-Max-Age"]) > 0


def test_a_preflight_from_another_origin_gets_no_cors_headers(db):
    response = preflight("/api/v1/tasks/1", "PATCH", origin="https://evil.example.com")

    assert not any(name.lower().startswith("access-control-") for name in response.headers)


def test_a_preflight_with_a_declared_body_is_not_refused_for_its_size(db, settings):
    response = Client().options(
        "/api/v1/tasks/1",
        HTTP_ORIGIN=FRONTEND,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="PATCH",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization",
        CONTENT_LENGTH=str(settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1),
    )

    assert response.status_code == HTTPStatus.OK
    assert response["Access-Control-Allow-Origin"] == FRONTEND


def test_an_allowed_origin_can_read_the_response_and_its_request_id(alice):
    response = alice.get("/api/v1/tasks", HTTP_ORIGIN=FRONTEND)

    assert response.status_code == HTTPStatus.OK
    assert response["Access-Control-Allow-Origin"] == FRONTEND
    assert "X-Request-ID" in response["Access-Control-Expose-Headers"]


def test_an_allowed_origin_can_read_the_location_of_a_created_task(alice):
    response = alice.post("/api/v1/tasks", {"title": "From the browser"}, format="json", HTTP_ORIGIN=FRONTEND)

    assert response.status_code == HTTPStatus.CREATED
    assert response["Access-Control-Allow-Origin"] == FRONTEND
    assert "Location" in response["Access-Control-Expose-Headers"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, HTTPStatus.UNAUTHORIZED),
        (
            {"CONTENT_LENGTH": "99999999", "CONTENT_TYPE": "application/json"},
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        ),
    ],
)
def test_errors_carry_cors_headers_so_the_frontend_can_read_them(anonymous, headers, status):
    response = anonymous.generic("POST", "/api/v1/tasks", b"{}", HTTP_ORIGIN=FRONTEND, **headers)

    assert response.status_code == status
    assert response["Access-Control-Allow-Origin"] == FRONTEND


def test_an_actual_request_from_another_origin_gets_no_cors_headers(alice):
    response = alice.get("/api/v1/tasks", HTTP_ORIGIN="https://evil.example.com")

    assert "Access-Control-Allow-Origin" not in response


def test_pages_outside_the_api_get_no_cors_headers(db):
    response = Client().get("/healthz", HTTP_ORIGIN=FRONTEND)

    assert response.status_code == HTTPStatus.OK
    assert "Access-Control-Allow-Origin" not in response


def test_an_allowed_origin_can_read_why_a_token_was_refused(db, better_auth):
    response = Client().get("/api/v1/me", HTTP_ORIGIN=FRONTEND, HTTP_AUTHORIZATION="Bearer not-a-jwt")

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response["Access-Control-Allow-Origin"] == FRONTEND
    exposed = {name.strip() for name in response["Access-Control-Expose-Headers"].split(",")}
    assert {"WWW-Authenticate", "Retry-After"} <= exposed


@pytest.mark.parametrize(
    ("path", "method", "headers"),
    [
        ("/api/v1/tasks", "POST", "authorization, content-type, idempotency-key"),
        ("/api/alice/tasks", "POST", "authorization, content-type, idempotency-key"),
        ("/api/v1/tasks/1", "PATCH", "authorization, content-type, if-match"),
        ("/api/v1/tasks/1", "DELETE", "authorization, if-match"),
        ("/api/alice/tasks/1/complete", "PATCH", "authorization, if-match"),
        ("/api/v1/tasks/1", "GET", "authorization, if-none-match"),
    ],
)
def test_a_preflight_allows_the_retry_and_conditional_request_headers(db, path, method, headers):
    response = Client().options(
        path,
        HTTP_ORIGIN=FRONTEND,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS=headers,
    )

    assert response.status_code == HTTPStatus.OK
    assert response["Access-Control-Allow-Origin"] == FRONTEND
    allowed = set(response["Access-Control-Allow-Headers"].split(", "))
    assert set(headers.split(", ")) <= allowed


def test_an_allowed_origin_can_read_the_etag_and_whether_a_create_was_replayed(alice):
    created = alice.post(
        "/api/v1/tasks", {"title": "Once"}, format="json", HTTP_ORIGIN=FRONTEND, HTTP_IDEMPOTENCY_KEY="k"
    )
    replayed = alice.post(
        "/api/v1/tasks", {"title": "Once"}, format="json", HTTP_ORIGIN=FRONTEND, HTTP_IDEMPOTENCY_KEY="k"
    )

    assert replayed["Idempotent-Replayed"] == "true"
    for response in (created, replayed):
        assert response["Access-Control-Allow-Origin"] == FRONTEND
        exposed = {name.strip() for name in response["Access-Control-Expose-Headers"].split(",")}
        assert {"ETag", "Idempotent-Replayed"} <= exposed
