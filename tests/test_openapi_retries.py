"""The schema documents ETag, If-None-Match, If-Match and Idempotency-Key, and the 304, 409, 412 and 422
they bring, with examples, on both route families."""

import json
from http import HTTPStatus

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

DETAILS = ["/api/v1/tasks/{id}", "/api/{user_id}/tasks/{id}"]
LISTS = ["/api/v1/tasks", "/api/{user_id}/tasks"]
ERROR_REF = {"$ref": "#/components/schemas/Error"}


@pytest.fixture(scope="module")
def paths(django_db_blocker):
    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema/?format=json")
    assert response.status_code == HTTPStatus.OK
    return json.loads(response.content)["paths"]


def header_parameters(operation):
    return {parameter["name"] for parameter in operation["parameters"] if parameter["in"] == "header"}


def assert_error_with_example(response, code):
    content = response["content"]["application/json"]
    assert content["schema"] == ERROR_REF
    [example] = content["examples"].values()
    assert example["value"]["code"] == code


@pytest.mark.parametrize("path", DETAILS + LISTS)
def test_reads_take_if_none_match_and_answer_an_etag_or_a_304(paths, path):
    operation = paths[path]["get"]

    assert "If-None-Match" in header_parameters(operation)
    assert "ETag" in operation["responses"]["200"]["headers"]
    assert "ETag" in operation["responses"]["304"]["headers"]
    assert "content" not in operation["responses"]["304"]


@pytest.mark.parametrize(
    ("path", "method"),
    [(path, method) for path in DETAILS for method in ("put", "patch", "delete")]
    + [("/api/{user_id}/tasks/{id}/complete", "patch")],
)
def test_writes_take_if_match_and_document_the_412(paths, path, method):
    operation = paths[path][method]

    assert "If-Match" in header_parameters(operation)
    assert_error_with_example(operation["responses"]["412"], "precondition_failed")
    if method != "delete":
        assert "ETag" in operation["responses"]["200"]["headers"]


@pytest.mark.parametrize("path", LISTS)
def test_creates_take_an_idempotency_key_and_document_the_replay_409_and_422(paths, path):
    operation = paths[path]["post"]

    assert "Idempotency-Key" in header_parameters(operation)
    assert {"ETag", "Location", "Idempotent-Replayed"} <= set(operation["responses"]["201"]["headers"])
    assert_error_with_example(operation["responses"]["409"], "idempotency_key_in_progress")
    assert_error_with_example(operation["responses"]["422"], "idempotency_key_reused")


def test_requests_without_these_headers_are_documented_as_valid(paths):
    for item in paths.values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "header":
                    assert parameter.get("required", False) is False, parameter["name"]
