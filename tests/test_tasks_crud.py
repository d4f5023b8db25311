"""The /api/v1 endpoints for one task: create, read, replace, update, delete; and /api/v1/me."""

from http import HTTPStatus
from urllib.parse import urlsplit

import pytest

from tasks.models import Task

both_slash_forms = pytest.mark.parametrize("slash", ["", "/"], ids=["no-slash", "slash"])

NOT_FOUND = {"status": 404, "code": "not_found", "message": "Not found."}


def iso(moment):
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def as_json(task):
    """The task as the API must show it, read back from the database."""
    task.refresh_from_db()
    return {
        "id": task.pk,
        "title": task.title,
        "description": task.description,
        "completed": task.completed,
        "completed_at": iso(task.completed_at),
        "priority": task.get_priority_display(),
        "due_at": iso(task.due_at),
        "tags": sorted(tag.name for tag in task.tags.all()),
        "created_at": iso(task.created_at),
        "updated_at": iso(task.updated_at),
    }


def create(client, **fields):
    response = client.post("/api/v1/tasks", {"title": "Buy milk", **fields}, format="json")
    assert response.status_code == HTTPStatus.CREATED, response.content
    return Task.objects.get(pk=response.json()["id"])


@both_slash_forms
def test_it_creates_a_task_owned_by_the_caller(alice, slash):
    response = alice.post(
        f"/api/v1/tasks{slash}",
        {"title": "Buy milk", "description": "2 litres", "completed": True},
        format="json",
    )

    assert response.status_code == HTTPStatus.CREATED
    task = Task.objects.get()
    assert task.owner.sub == alice.sub
    assert (task.title, task.description, task.completed) == ("Buy milk", "2 litres", True)
    assert response.json() == as_json(task)
    assert response["Content-Type"] == "application/json"


@both_slash_forms
def test_its_location_header_points_at_the_new_task(alice, slash):
    response = alice.post(f"/api/v1/tasks{slash}", {"title": "Buy milk"}, format="json")

    location = urlsplit(response["Location"])
    assert (location.scheme, location.netloc) == ("http", "testserver")
    assert location.path == f"/api/v1/tasks/{response.json()['id']}"
    fetched = alice.get(location.path)
    assert fetched.status_code == HTTPStatus.OK
    assert fetched.json() == response.json()


def test_a_new_task_has_an_empty_description_and_is_not_completed(alice):
    response = alice.post("/api/v1/tasks", {"title": "Buy milk"}, format="json")

    assert response.status_code == HTTPStatus.CREATED
    body = response.json()
    assert (body["description"], body["completed"]) == ("", False)
    assert body == as_json(Task.objects.get(pk=body["id"]))


@both_slash_forms
def test_it_reads_a_task(alice, slash):
    task = create(alice, description="2 litres")

    response = alice.get(f"/api/v1/tasks/{task.pk}{slash}")

    assert response.status_code == HTTPStatus.OK
    assert response.json() == as_json(task)


@both_slash_forms
def test_it_replaces_a_task_with_put(alice, slash):
    task = create(alice, description="2 litres")

    response = alice.put(
        f"/api/v1/tasks/{task.pk}{slash}",
        {"title": "Buy oat milk", "description": "1 litre", "completed": True},
        format="json",
    )

    assert response.status_code == HTTPStatus.OK
    assert response.json() == as_json(task)
    assert (task.title, task.description, task.completed) == ("Buy oat milk", "1 litre", True)


@both_slash_forms
def test_put_requires_a_title(alice, slash):
    task = create(alice)
    before = as_json(task)

    response = alice.put(
        f"/api/v1/tasks/{task.pk}{slash}", {"description": "1 litre", "completed": True}, format="json"
    )

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == {
        "status": 400,
        "code": "invalid",
        "message": "The request has invalid fields.",
        "fields": {"title": ["This field is required."]},
    }
    assert as_json(task) == before


@both_slash_forms
def test_patch_changes_only_the_fields_it_sends(alice, slash):
    task = create(alice, description="2 litres")
    before = as_json(task)

    response = alice.patch(f"/api/v1/tasks/{task.pk}{slash}", {"completed": True}, format="json")

    assert response.status_code == HTTPStatus.OK
    after = as_json(task)
    assert response.json() == after
    assert after["completed"] is True
    assert (after["title"], after["description"], after["created_at"]) == (
        before["title"],
        before["description"],
        before["created_at"],
    )
    assert after["updated_at"] >= before["updated_at"]


@both_slash_forms
def test_it_deletes_a_task_and_then_answers_404_for_it(alice, slash):
    task = create(alice)
    path = f"/api/v1/tasks/{task.pk}{slash}"

    response = alice.delete(path)

    assert response.status_code == HTTPStatus.NO_CONTENT
    assert response.content == b""
    assert not Task.objects.filter(pk=task.pk).exists()
    for method in (alice.get, alice.delete):
        gone = method(path)
        assert gone.status_code == HTTPStatus.NOT_FOUND
        assert gone.json() == NOT_FOUND


@both_slash_forms
def test_a_task_that_never_existed_is_404_for_every_method(alice, slash):
    path = f"/api/v1/tasks/987654321{slash}"

    for response in (
        alice.get(path),
        alice.put(path, {"title": "x"}, format="json"),
        alice.patch(path, {"title": "x"}, format="json"),
        alice.delete(path),
    ):
        assert response.status_code == HTTPStatus.NOT_FOUND
        assert response.json() == NOT_FOUND
    assert Task.objects.count() == 0


@both_slash_forms
def test_me_describes_the_caller_from_their_token(alice, slash):
    response = alice.get(f"/api/v1/me{slash}")

    assert response.status_code == HTTPStatus.OK
    assert response.json() == {"id": alice.sub, "email": "alice@example.com", "name": "Alice"}
