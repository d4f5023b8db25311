"""What a task body may contain and how every malformed request is refused, with nothing stored."""

import json
from http import HTTPStatus

import pytest
from django.conf import settings

from tasks.models import Task
from tests.support.assertions import assert_refused

TASKS = "/api/v1/tasks"


def invalid(field, *messages):
    return {
        "status": 400,
        "code": "invalid",
        "message": "The request has invalid fields.",
        "fields": {field: list(messages)},
    }


def post_raw(client, body, content_type="application/json", **extra):
    return client.generic("POST", TASKS, data=body, content_type=content_type, **extra)


def assert_nothing_saved(response, status, body=None):
    assert_refused(response, status, body)
    assert Task.objects.count() == 0


@pytest.fixture
def task(alice):
    response = alice.post(TASKS, {"title": "Buy milk", "description": "2 litres"}, format="json")
    return Task.objects.get(pk=response.json()["id"])


# Titles


@pytest.mark.parametrize("title", ["a", "x" * 200, "😀" * 200, "漢" * 200, "é" * 200])
def test_it_accepts_a_title_of_1_to_200_characters(alice, title):
    response = alice.post(TASKS, {"title": title}, format="json")

    assert response.status_code == HTTPStatus.CREATED
    assert response.json()["title"] == title
    assert Task.objects.get().title == title


@pytest.mark.parametrize("title", ["x" * 201, "😀" * 201, "漢" * 201])
def test_it_refuses_a_title_of_201_characters(alice, title):
    assert_nothing_saved(
        alice.post(TASKS, {"title": title}, format="json"),
        HTTPStatus.BAD_REQUEST,
        invalid("title", "Ensure this field has no more than 200 characters."),
    )


@pytest.mark.parametrize("title", ["", "   ", "\t\n "])
def test_it_refuses_an_empty_or_blank_title(alice, title):
    assert_nothing_saved(
        alice.post(TASKS, {"title": title}, format="json"),
        HTTPStatus.BAD_REQUEST,
        invalid("title", "This field may not be blank."),
    )


def test_it_refuses_a_missing_title(alice):
    assert_nothing_saved(
        alice.post(TASKS, {"description": "no title"}, format="json"),
        HTTPStatus.BAD_REQUEST,
        invalid("title", "This field is required."),
    )


def test_it_trims_spaces_around_the_title_before_counting(alice):
    response = alice.post(TASKS, {"title": "  " + "x" * 200 + "  "}, format="json")

    assert response.status_code == HTTPStatus.CREATED
    assert Task.objects.get().title == "x" * 200


def test_it_refuses_a_blank_title_on_patch_and_keeps_the_old_one(alice, task):
    response = alice.patch(f"{TASKS}/{task.pk}", {"title": "  "}, format="json")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == invalid("title", "This field may not be blank.")
    task.refresh_from_db()
    assert task.title == "Buy milk"


@pytest.mark.parametrize("title", [42, 4.2, True, ["Buy milk"], {"text": "Buy milk"}])
def test_it_refuses_a_title_that_is_not_a_json_string(alice, title):
    assert_nothing_saved(
        alice.post(TASKS, {"title": title}, format="json"),
        HTTPStatus.BAD_REQUEST,
        invalid("title", "Not a valid string."),
    )


def test_it_refuses_a_null_title(alice):
    assert_nothing_saved(
        alice.post(TASKS, {"title": None}, format="json"),
        HTTPStatus.BAD_REQUEST,
        invalid("title", "This field may not be null."),
    )


# Descriptions


def test_it_accepts_a_description_of_1000_characters(alice):
    response = alice.post(TASKS, {"title": "t", "description": "d" * 1000}, format="json")

    assert response.status_code == HTTPStatus.CREATED
    assert Task.objects.get().description == "d" * 1000


def test_it_refuses_a_description_of_1001_characters(alice):
    assert_nothing_saved(
        alice.post(TASKS, {"title": "t", "description": "d" * 1001}, format="json"),
        HTTPStatus.BAD_REQUEST,
        invalid("description", "Ensure this field has no more than 1000 characters."),
    )


@pytest.mark.parametrize("description", [7, False, ["d"], {"d": 1}])
def test_it_refuses_a_description_that_is_not_a_json_string(alice, description):
    assert_nothing_saved(
        alice.post(TASKS, {"title": "t", "description": description}, format="json"),
        HTTPStatus.BAD_REQUEST,
        invalid("description", "Not a valid string."),
    )


@pytest.mark.parametrize("field", ["title", "description"])
def test_it_refuses_a_nul_character_and_stores_nothing(alice, field):
    body = {"title": "t", field: "before\x00after"}

    assert_nothing_saved(
        alice.post(TASKS, body, format="json"),
        HTTPStatus.BAD_REQUEST,
        invalid(field, "Null characters are not allowed."),
    )


def test_it_refuses_a_nul_character_on_patch(alice, task):
    response = alice.patch(f"{TASKS}/{task.pk}", {"description": "a\x00b"}, format="json")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == invalid("description", "Null characters are not allowed.")
    task.refresh_from_db()
    assert task.description == "2 litres"


# Completed


@pytest.mark.parametrize("completed", ["yes", "true", "false", 1, 0, "1", [], {}])
def test_it_refuses_a_completed_that_is_not_a_json_boolean(alice, completed):
    response = alice.post(TASKS, {"title": "t", "completed": completed}, format="json")

    assert_nothing_saved(response, HTTPStatus.BAD_REQUEST)
    assert list(response.json()["fields"]) == ["completed"]
    assert response.json()["fields"]["completed"][0] == "Must be a valid boolean."


def test_it_refuses_a_null_completed(alice, task):
    response = alice.patch(f"{TASKS}/{task.pk}", {"completed": None}, format="json")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == invalid("completed", "This field may not be null.")
    task.refresh_from_db()
    assert task.completed is False


# Bodies


@pytest.mark.parametrize("body", [b"", b"{}"], ids=["no-body", "empty-object"])
def test_a_patch_with_an_empty_body_changes_nothing(alice, task, body):
    response = alice.generic("PATCH", f"{TASKS}/{task.pk}", data=body, content_type="application/json")

    assert response.status_code == HTTPStatus.OK
    assert (response.json()["title"], response.json()["description"]) == ("Buy milk", "2 litres")


@pytest.mark.parametrize(
    "body", [b'{"title": "t"', b"{'title': 't'}", b"title=t", b'{"title": "t",}', b"\xff\xfe"]
)
def test_it_refuses_malformed_json(alice, body):
    response = post_raw(alice, body)

    assert_nothing_saved(response, HTTPStatus.BAD_REQUEST)
    assert response.json()["code"] == "parse_error"
    assert response.json()["message"].startswith("JSON parse error")


def test_it_refuses_a_top_level_json_array(alice):
    assert_nothing_saved(
        post_raw(alice, b'[{"title": "t"}]'),
        HTTPStatus.BAD_REQUEST,
        invalid("non_field_errors", "Invalid data. Expected a dictionary, but got list."),
    )


@pytest.mark.parametrize("opening", [b"[", b'{"a":'])
def test_it_refuses_deeply_nested_json_without_crashing(alice, opening):
    depth = (settings.DATA_UPLOAD_MAX_MEMORY_SIZE - 1) // len(opening)
    body = opening * depth

    response = post_raw(alice, body)

    assert_nothing_saved(response, HTTPStatus.BAD_REQUEST)
    assert response.json()["code"] == "parse_error"


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_it_refuses_nan_and_infinity(alice, constant):
    response = post_raw(alice, b'{"title": "t", "completed": ' + constant + b"}")

    assert_nothing_saved(response, HTTPStatus.BAD_REQUEST)
    assert response.json()["code"] == "parse_error"


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("application/x-www-form-urlencoded", b"title=t"),
        (
            "multipart/form-data; boundary=xyz",
            b'--xyz\r\nContent-Disposition: form-data; name="title"\r\n\r\nt\r\n--xyz--',
        ),
        ("text/plain", b'{"title": "t"}'),
        ("application/xml", b"<title>t</title>"),
    ],
)
def test_it_refuses_a_body_that_is_not_json_with_415(alice, content_type, body):
    media_type = content_type.partition(";")[0]
    assert_nothing_saved(
        post_raw(alice, body, content_type),
        HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
        {
            "status": 415,
            "code": "unsupported_media_type",
            "message": f'Unsupported media type "{content_type}" in request.',
        }
        if media_type == content_type
        else None,
    )


def test_it_accepts_a_body_of_exactly_the_size_limit(alice):
    body = json.dumps({"title": "t"}).encode()
    body += b" " * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE - len(body))

    response = post_raw(alice, body)

    assert response.status_code == HTTPStatus.CREATED
    assert Task.objects.count() == 1


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_it_refuses_a_body_over_the_size_limit_with_413(alice, task, method):
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    assert limit == 64 * 1024
    body = json.dumps({"title": "t", "description": "d" * limit}).encode()
    path = TASKS if method == "POST" else f"{TASKS}/{task.pk}"

    response = alice.generic(method, path, data=body, content_type="application/json")

    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert response.json() == {
        "status": 413,
        "code": "payload_too_large",
        "message": f"The request body is over {limit} bytes.",
    }
    assert list(Task.objects.values_list("description", flat=True)) == ["2 litres"]


@pytest.mark.parametrize("declared", ["abc", "1e3", "12 34", "0x10"])
def test_it_refuses_a_content_length_that_is_not_a_number(alice, declared):
    response = post_raw(alice, b'{"title": "t"}', CONTENT_LENGTH=declared)

    assert_nothing_saved(
        response,
        HTTPStatus.BAD_REQUEST,
        {
            "status": 400,
            "code": "bad_request",
            "message": "The Content-Length header is not a number.",
        },
    )
