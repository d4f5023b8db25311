"""Body fields a task lacks: a 400 naming them on /api/v1, named in X-Ignored-Fields on /api/{user_id}."""

import json
from http import HTTPStatus
from urllib.parse import unquote

import pytest

from tasks.models import Task

# What a real third-party Next.js frontend sends on create.
THIRD_PARTY_BODY = {"title": "Call mum", "priority": "high", "category": "personal", "dueDate": "2026-12-01"}


def send(client, method, path, body):
    return client.generic(method, path, data=json.dumps(body), content_type="application/json")


def create(client, **fields):
    response = client.post("/api/v1/tasks", {"title": "t", **fields}, format="json")
    assert response.status_code == HTTPStatus.CREATED, response.content
    return response.json()


def test_v1_refuses_unknown_fields_naming_each_with_the_field_meant(alice):
    response = alice.post("/api/v1/tasks", THIRD_PARTY_BODY, format="json")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == {
        "status": 400,
        "code": "invalid",
        "message": "The request has invalid fields.",
        "fields": {
            "category": ['Unknown field. Did you mean "tags"?'],
            "dueDate": ['Unknown field. Did you mean "due_at"?'],
        },
    }
    assert not Task.objects.exists()


@pytest.mark.parametrize(
    "name, message",
    [
        ("due_date", 'Unknown field. Did you mean "due_at"?'),
        ("completedAt", 'Unknown field. Did you mean "completed_at"?'),
        ("titel", 'Unknown field. Did you mean "title"?'),
        ("done", 'Unknown field. Did you mean "completed"?'),
        ("colour", "Unknown field."),
    ],
)
def test_v1_suggests_the_field_meant_where_obvious(alice, name, message):
    response = alice.post("/api/v1/tasks", {"title": "t", name: 1}, format="json")

    assert response.json()["fields"] == {name: [message]}


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_v1_refuses_unknown_fields_on_update_and_changes_nothing(alice, method):
    task = create(alice)

    response = send(alice, method, f"/api/v1/tasks/{task['id']}", {"title": "new", "dueDate": "2026-12-01"})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert list(response.json()["fields"]) == ["dueDate"]
    assert Task.objects.get(pk=task["id"]).title == "t"


def test_v1_accepts_the_object_it_returned_sent_back_unchanged(alice):
    task = create(alice, completed=True, tags=["a"], priority="low", due_at="2026-12-01T00:00:00Z")

    response = send(alice, "PUT", f"/api/v1/tasks/{task['id']}", {**task, "title": "edited"})

    assert response.status_code == HTTPStatus.OK, response.content
    assert response.json() == {**task, "title": "edited", "updated_at": response.json()["updated_at"]}


def test_v1_ignores_read_only_fields(alice):
    task = create(alice)

    response = send(
        alice,
        "PATCH",
        f"/api/v1/tasks/{task['id']}",
        {"id": 1, "created_at": "2000-01-01T00:00:00Z", "completed_at": "2000-01-01T00:00:00Z"},
    )

    assert response.status_code == HTTPStatus.OK
    assert (response.json()["id"], response.json()["created_at"]) == (task["id"], task["created_at"])
    assert response.json()["completed_at"] is None


def test_compat_accepts_unknown_fields_and_names_them_in_a_header(alice):
    response = alice.post(f"/api/{alice.sub}/tasks", THIRD_PARTY_BODY, format="json")

    assert response.status_code == HTTPStatus.CREATED
    assert response["X-Ignored-Fields"] == "category, dueDate"
    assert response.json()["priority"] == "high"


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_compat_names_ignored_fields_on_update(alice, method):
    task = create(alice)

    response = send(
        alice, method, f"/api/{alice.sub}/tasks/{task['id']}", {"title": "x", "userId": alice.sub}
    )

    assert response.status_code == HTTPStatus.OK
    assert response["X-Ignored-Fields"] == "userId"


def test_compat_sends_no_header_when_nothing_was_ignored(alice):
    response = alice.post(f"/api/{alice.sub}/tasks", {"title": "t", "id": 5}, format="json")

    assert response.status_code == HTTPStatus.CREATED
    assert "X-Ignored-Fields" not in response


def test_the_header_percent_encodes_names_that_could_break_it(alice):
    body = {"title": "t", "a\r\nSet-Cookie: x": 1, "naïve": 2, "a,b": 3}

    response = alice.post(f"/api/{alice.sub}/tasks", body, format="json")

    assert response.status_code == HTTPStatus.CREATED
    assert response["X-Ignored-Fields"] == "a%0D%0ASet-Cookie%3A%20x, a%2Cb, na%C3%AFve"
    assert "Set-Cookie" not in response


def test_the_header_names_at_most_twenty_fields(alice):
    body = {"title": "t", **{f"extra{n:02}": n for n in range(30)}}

    response = alice.post(f"/api/{alice.sub}/tasks", body, format="json")

    assert response["X-Ignored-Fields"] == ", ".join(f"extra{n:02}" for n in range(20))


def test_a_60000_character_field_name_is_cut_to_fifty_characters_in_the_header(alice):
    body = {"title": "t", "x" * 60_000: 1, "dueDate": 2}

    response = alice.post(f"/api/{alice.sub}/tasks", body, format="json")

    assert response.status_code == HTTPStatus.CREATED
    assert response["X-Ignored-Fields"] == "dueDate, " + "x" * 50 + "%E2%80%A6"


def test_the_whole_header_stays_under_1024_bytes_leaving_out_names_that_do_not_fit(alice):
    # 20 names of 60 four-byte characters: 50 kept, each 600 bytes once percent-encoded.
    names = [f"{n:02}" + "😀" * 58 for n in range(20)]

    response = alice.post(f"/api/{alice.sub}/tasks", {"title": "t", **dict.fromkeys(names, 1)}, format="json")

    header = response["X-Ignored-Fields"]
    assert response.status_code == HTTPStatus.CREATED
    assert len(header.encode()) <= 1024
    assert [unquote(name) for name in header.split(", ")] == [names[0][:50] + "…"]


def test_browsers_may_read_the_header(alice, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]

    response = alice.post(
        f"/api/{alice.sub}/tasks",
        {"title": "t", "x": 1},
        format="json",
        HTTP_ORIGIN="https://app.example.com",
    )

    assert "x-ignored-fields" in response["Access-Control-Expose-Headers"].lower().split(", ")
