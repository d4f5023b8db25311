"""The /api/{user_id}/tasks routes of the Next.js + Better Auth todo spec, including the completion toggle."""

import contextlib
import threading
from http import HTTPStatus
from urllib.parse import urlsplit

import pytest
from django.db import connection
from rest_framework.test import APIClient

from tasks.models import Task

both_slash_forms = pytest.mark.parametrize("slash", ["", "/"], ids=["no-slash", "slash"])

FORBIDDEN = {"status": 403, "code": "permission_denied", "message": "The user id in the path is not yours."}


def iso(moment):
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def as_json(task):
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


def tasks_of(client):
    return f"/api/{client.sub}/tasks"


def create(client, title="Buy milk", **fields):
    response = client.post(tasks_of(client), {"title": title, **fields}, format="json")
    assert response.status_code == HTTPStatus.CREATED, response.content
    return Task.objects.get(pk=response.json()["id"])


@both_slash_forms
def test_the_list_is_a_plain_json_array_newest_first(alice, slash):
    older = create(alice, "older")
    newer = create(alice, "newer", description="d", completed=True)

    response = alice.get(f"{tasks_of(alice)}{slash}")

    assert response.status_code == HTTPStatus.OK
    assert response.json() == [as_json(newer), as_json(older)]


def test_an_empty_list_is_an_empty_array(alice):
    response = alice.get(tasks_of(alice))

    assert (response.status_code, response.json()) == (HTTPStatus.OK, [])


def test_the_list_is_not_paginated(alice):
    owner = create(alice, "first").owner
    Task.objects.bulk_create([Task(owner=owner, title=f"t{n}") for n in range(24)])

    response = alice.get(f"{tasks_of(alice)}?limit=5")

    assert len(response.json()) == 25


@both_slash_forms
def test_it_creates_a_task_with_a_location_under_the_same_path(alice, slash):
    response = alice.post(
        f"{tasks_of(alice)}{slash}", {"title": "Buy milk", "description": "2 litres"}, format="json"
    )

    assert response.status_code == HTTPStatus.CREATED
    task = Task.objects.get()
    assert task.owner.sub == alice.sub
    assert response.json() == as_json(task)
    location = urlsplit(response["Location"])
    assert (location.netloc, location.path) == ("testserver", f"{tasks_of(alice)}/{task.pk}")
    fetched = alice.get(location.path)
    assert (fetched.status_code, fetched.json()) == (HTTPStatus.OK, as_json(task))


@both_slash_forms
def test_it_reads_replaces_updates_and_deletes_a_task(alice, slash):
    task = create(alice, description="2 litres")
    path = f"{tasks_of(alice)}/{task.pk}{slash}"

    read = alice.get(path)
    assert (read.status_code, read.json()) == (HTTPStatus.OK, as_json(task))

    replaced = alice.put(
        path, {"title": "Buy oat milk", "description": "1 litre", "completed": True}, format="json"
    )
    assert (replaced.status_code, replaced.json()) == (HTTPStatus.OK, as_json(task))
    assert (task.title, task.description, task.completed) == ("Buy oat milk", "1 litre", True)

    updated = alice.patch(path, {"completed": False}, format="json")
    assert (updated.status_code, updated.json()) == (HTTPStatus.OK, as_json(task))
    assert (task.title, task.completed) == ("Buy oat milk", False)

    deleted = alice.delete(path)
    assert (deleted.status_code, deleted.content) == (HTTPStatus.NO_CONTENT, b"")
    assert alice.get(path).status_code == HTTPStatus.NOT_FOUND
    assert not Task.objects.exists()


@both_slash_forms
def test_put_requires_a_title(alice, slash):
    task = create(alice)

    response = alice.put(f"{tasks_of(alice)}/{task.pk}{slash}", {"completed": True}, format="json")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == {
        "status": 400,
        "code": "invalid",
        "message": "The request has invalid fields.",
        "fields": {"title": ["This field is required."]},
    }


@both_slash_forms
def test_complete_toggles_and_returns_the_task(alice, slash):
    task = create(alice, description="2 litres")
    path = f"{tasks_of(alice)}/{task.pk}/complete{slash}"

    first = alice.patch(path)
    assert first.status_code == HTTPStatus.OK
    assert first.json() == as_json(task)
    assert task.completed is True

    second = alice.patch(path)
    assert second.status_code == HTTPStatus.OK
    assert second.json() == as_json(task)
    assert (task.completed, task.title, task.description) == (False, "Buy milk", "2 litres")


def test_complete_ignores_any_body(alice):
    task = create(alice)

    response = alice.patch(
        f"{tasks_of(alice)}/{task.pk}/complete", {"completed": False, "title": "x"}, format="json"
    )

    assert response.status_code == HTTPStatus.OK
    assert (response.json()["completed"], response.json()["title"]) == (True, "Buy milk")


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
def test_complete_accepts_only_patch(alice, method):
    task = create(alice)

    response = alice.generic(method, f"{tasks_of(alice)}/{task.pk}/complete")

    assert response.status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert response.json() == {
        "status": 405,
        "code": "method_not_allowed",
        "message": f'Method "{method}" not allowed.',
    }
    task.refresh_from_db()
    assert task.completed is False


def test_complete_of_a_missing_task_is_404(alice):
    response = alice.patch(f"{tasks_of(alice)}/987654321/complete")

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.json() == {"status": 404, "code": "not_found", "message": "Not found."}


@both_slash_forms
@pytest.mark.parametrize(
    "method, suffix",
    [
        ("GET", ""),
        ("POST", ""),
        ("GET", "/1"),
        ("PUT", "/1"),
        ("PATCH", "/1"),
        ("DELETE", "/1"),
        ("PATCH", "/1/complete"),
    ],
)
@pytest.mark.parametrize("user_id", ["someone-else", "v2", "ALICE"])
def test_a_path_user_id_that_is_not_the_callers_is_403(alice, method, suffix, user_id, slash):
    own = create(alice)
    path = (
        f"/api/{user_id.replace('ALICE', alice.sub.upper())}/tasks{suffix.replace('1', str(own.pk))}{slash}"
    )

    response = alice.generic(method, path, data='{"title": "t"}', content_type="application/json")

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response.json() == FORBIDDEN
    assert list(Task.objects.values_list("title", "completed")) == [("Buy milk", False)]


@pytest.mark.parametrize("suffix", ["", "/1", "/1/complete"])
def test_the_routes_need_a_token(anonymous, alice_sub, suffix):
    response = anonymous.generic("PATCH" if suffix else "GET", f"/api/{alice_sub}/tasks{suffix}")

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json() == {
        "status": 401,
        "code": "not_authenticated",
        "message": "Authentication credentials were not provided.",
    }


def toggle_concurrently(url, token, threads, toggles_each):
    """Toggles from several threads at once, each with its own client and database connection.

    The test database on SQLite is in memory with a shared cache, where a second writer fails at once
    ("database table is locked") instead of waiting; there the threads take turns, so the race itself
    is exercised by the PostgreSQL run of this suite.
    """
    statuses = []
    barrier = threading.Barrier(threads)
    turn = threading.Lock() if connection.vendor == "sqlite" else contextlib.nullcontext()

    def worker():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        try:
            barrier.wait()
            for _ in range(toggles_each):
                with turn:
                    statuses.append(client.patch(url).status_code)
        finally:
            connection.close()

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return statuses


@pytest.mark.django_db(transaction=True)
def test_concurrent_toggles_lose_no_update(token_for, alice_sub):
    client = APIClient()
    token = token_for(alice_sub)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = client.post(f"/api/{alice_sub}/tasks", {"title": "Flip me"}, format="json")
    task = Task.objects.get(pk=response.json()["id"])
    url = f"/api/{alice_sub}/tasks/{task.pk}/complete"

    # A lost update flips the outcome only when an odd number are lost, so race several rounds.
    for _ in range(5):
        statuses = toggle_concurrently(url, token, threads=10, toggles_each=4)

        assert statuses == [HTTPStatus.OK] * 40
        task.refresh_from_db()
        assert task.completed is False
    assert client.patch(url).json()["completed"] is True
