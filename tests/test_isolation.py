"""A user sees and changes their own tasks only, on both route families; nobody can set an owner."""

import json
from http import HTTPStatus

import pytest

from authbridge.models import User
from tasks.compiled import MARKER_BASE, CompiledQuery
from tasks.models import Task, TaskQuerySet
from tests.support.api import iso

NOT_FOUND = {"status": 404, "code": "not_found", "message": "Not found."}
FORBIDDEN = {"status": 403, "code": "permission_denied", "message": "The user id in the path is not yours."}
NEVER_EXISTED = 987654321

# Each write carries a complete, valid body, so only ownership can refuse it.
WRITES = {
    "GET": None,
    "PUT": {"title": "Taken over", "description": "by bob", "completed": True},
    "PATCH": {"title": "Taken over", "completed": True},
    "DELETE": None,
}


def snapshot(task):
    task.refresh_from_db()
    return (
        task.owner_id,
        task.title,
        task.description,
        task.completed,
        iso(task.created_at),
        iso(task.updated_at),
    )


def send(client, method, path, body=None):
    if body is None:
        return client.generic(method, path)
    return client.generic(method, path, data=json.dumps(body), content_type="application/json")


def create(client, title="Alice's secret", **fields):
    response = client.post(
        "/api/v1/tasks", {"title": title, "description": "private", **fields}, format="json"
    )
    assert response.status_code == HTTPStatus.CREATED
    return Task.objects.get(pk=response.json()["id"])


@pytest.fixture
def alices_task(alice):
    return create(alice)


@pytest.mark.parametrize("slash", ["", "/"], ids=["no-slash", "slash"])
@pytest.mark.parametrize("method", list(WRITES))
def test_another_users_task_is_404_exactly_like_a_missing_one_on_v1(alice, bob, alices_task, method, slash):
    before = snapshot(alices_task)

    foreign = send(bob, method, f"/api/v1/tasks/{alices_task.pk}{slash}", WRITES[method])
    missing = send(bob, method, f"/api/v1/tasks/{NEVER_EXISTED}{slash}", WRITES[method])

    assert foreign.status_code == missing.status_code == HTTPStatus.NOT_FOUND
    assert foreign.json() == missing.json() == NOT_FOUND
    assert foreign["Content-Type"] == missing["Content-Type"] == "application/json"
    assert snapshot(alices_task) == before
    assert Task.objects.count() == 1


@pytest.mark.parametrize("slash", ["", "/"], ids=["no-slash", "slash"])
@pytest.mark.parametrize("method", list(WRITES))
def test_another_users_task_is_404_under_ones_own_compatibility_path(alice, bob, alices_task, method, slash):
    before = snapshot(alices_task)

    foreign = send(bob, method, f"/api/{bob.sub}/tasks/{alices_task.pk}{slash}", WRITES[method])
    missing = send(bob, method, f"/api/{bob.sub}/tasks/{NEVER_EXISTED}{slash}", WRITES[method])

    assert foreign.status_code == missing.status_code == HTTPStatus.NOT_FOUND
    assert foreign.json() == missing.json() == NOT_FOUND
    assert snapshot(alices_task) == before


@pytest.mark.parametrize("slash", ["", "/"], ids=["no-slash", "slash"])
def test_another_users_task_cannot_be_toggled_under_ones_own_path(alice, bob, alices_task, slash):
    before = snapshot(alices_task)

    response = bob.patch(f"/api/{bob.sub}/tasks/{alices_task.pk}/complete{slash}")

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.json() == NOT_FOUND
    assert snapshot(alices_task) == before


@pytest.mark.parametrize("path", ["/api/v1/tasks", "/api/v1/tasks/", "/api/{bob}/tasks", "/api/{bob}/tasks/"])
def test_a_list_never_shows_another_users_tasks(alice, bob, alices_task, path):
    create(alice, title="Alice's other", completed=True)
    bobs = create(bob, title="Bob's own")
    query = "?search=secret&completed=false&ordering=title"

    everything = bob.get(path.format(bob=bob.sub))
    searched = bob.get(path.format(bob=bob.sub) + query)

    assert everything.status_code == searched.status_code == HTTPStatus.OK
    rows = everything.json()
    rows = rows["results"] if isinstance(rows, dict) else rows
    assert [row["id"] for row in rows] == [bobs.pk]
    searched_rows = searched.json()
    searched_rows = searched_rows["results"] if isinstance(searched_rows, dict) else searched_rows
    assert searched_rows == []


def test_the_paginated_count_counts_only_ones_own_tasks(alice, bob, alices_task):
    assert bob.get("/api/v1/tasks").json() == {"count": 0, "next": None, "previous": None, "results": []}


@pytest.mark.parametrize("slash", ["", "/"], ids=["no-slash", "slash"])
@pytest.mark.parametrize(
    "method, suffix, body",
    [
        ("GET", "", None),
        ("POST", "", {"title": "Planted by bob"}),
        ("GET", "/{id}", None),
        ("PUT", "/{id}", WRITES["PUT"]),
        ("PATCH", "/{id}", WRITES["PATCH"]),
        ("DELETE", "/{id}", None),
        ("PATCH", "/{id}/complete", None),
    ],
)
def test_another_users_compatibility_path_is_403_with_no_task_data(
    alice, bob, alices_task, method, suffix, body, slash
):
    before = snapshot(alices_task)
    path = f"/api/{alice.sub}/tasks{suffix.format(id=alices_task.pk)}{slash}"

    response = send(bob, method, path, body)

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response.json() == FORBIDDEN
    assert alices_task.title.encode() not in response.content
    assert snapshot(alices_task) == before
    assert Task.objects.count() == 1


OWNER_CLAIMS = pytest.mark.parametrize(
    "claim",
    [
        lambda bob: {"owner": bob.pk},
        lambda bob: {"owner": bob.sub},
        lambda bob: {"owner_id": bob.pk},
        lambda bob: {"user_id": bob.sub},
        lambda bob: {"owner": {"sub": bob.sub}},
    ],
    ids=["owner-pk", "owner-sub", "owner_id", "user_id", "owner-object"],
)


@OWNER_CLAIMS
def test_a_new_task_naming_an_owner_is_refused_on_v1(alice, bob, claim):
    bob_user = create(bob, title="Bob exists").owner

    response = alice.post("/api/v1/tasks", {"title": "Mine", **claim(bob_user)}, format="json")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert set(response.json()["fields"]) == set(claim(bob_user))
    assert not Task.objects.filter(title="Mine").exists()


@OWNER_CLAIMS
def test_a_new_task_belongs_to_the_caller_whatever_owner_the_body_names(alice, bob, claim):
    bob_user = create(bob, title="Bob exists").owner

    response = alice.post(f"/api/{alice.sub}/tasks", {"title": "Mine", **claim(bob_user)}, format="json")

    assert response.status_code == HTTPStatus.CREATED
    assert response["X-Ignored-Fields"] == ", ".join(claim(bob_user))
    assert Task.objects.get(pk=response.json()["id"]).owner.sub == alice.sub
    assert [row["title"] for row in bob.get("/api/v1/tasks").json()["results"]] == ["Bob exists"]


def test_a_new_task_ignores_a_client_chosen_id_and_timestamps(alice, alices_task):
    response = alice.post(
        "/api/v1/tasks",
        {
            "title": "Mine",
            "id": alices_task.pk,
            "created_at": "2000-01-01T00:00:00Z",
            "updated_at": "2000-01-01T00:00:00Z",
        },
        format="json",
    )

    assert response.status_code == HTTPStatus.CREATED
    task = Task.objects.get(pk=response.json()["id"])
    assert task.pk != alices_task.pk
    assert task.created_at.year > 2000 and task.updated_at.year > 2000
    assert Task.objects.get(pk=alices_task.pk).title == "Alice's secret"


@pytest.mark.parametrize("path", ["/api/v1/tasks/{id}", "/api/{user_id}/tasks/{id}"])
@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_an_update_cannot_change_the_owner_id_or_created_at(alice, bob, alices_task, path, method):
    bob_user = create(bob, title="Bob exists").owner
    before = snapshot(alices_task)
    body = {
        "title": "Renamed",
        "owner": bob_user.pk,
        "owner_id": bob_user.pk,
        "id": NEVER_EXISTED,
        "created_at": "2000-01-01T00:00:00Z",
    }

    response = send(alice, method, path.format(id=alices_task.pk, user_id=alice.sub), body)

    after = snapshot(alices_task)
    if path.startswith("/api/v1/"):
        # Fields a task does not have are refused there, and nothing changes.
        assert response.status_code == HTTPStatus.BAD_REQUEST
        assert set(response.json()["fields"]) == {"owner", "owner_id"}
        assert after == before
    else:
        assert response.status_code == HTTPStatus.OK
        assert response.json()["id"] == alices_task.pk
        assert (after[0], after[1], after[4]) == (before[0], "Renamed", before[4])
    assert not Task.objects.filter(pk=NEVER_EXISTED).exists()
    assert bob.get(f"/api/v1/tasks/{alices_task.pk}").status_code == HTTPStatus.NOT_FOUND


@pytest.fixture
def owned_by_calls(monkeypatch):
    """Records who each `owned_by` call was for (a compiled query's is its owner marker, see
    tasks/compiled.py); the real method still does the filtering. Compiled queries are compiled
    afresh, so their `owned_by` call happens during the request too."""
    calls = []
    real = TaskQuerySet.owned_by
    compiled_owners = []
    real_rows = CompiledQuery.rows

    def spy(self, user):
        calls.append(user.sub or user.pk)
        return real(self, user)

    def compiled_spy(self, variant=None, **values):
        compiled_owners.append(values["owner"])
        return real_rows(self, variant, **values)

    monkeypatch.setattr(TaskQuerySet, "owned_by", spy)
    monkeypatch.setattr(CompiledQuery, "rows", compiled_spy)
    monkeypatch.setattr(CompiledQuery, "compiled", CompiledQuery.compile)
    return calls, compiled_owners


@pytest.mark.parametrize(
    "method, path, expected_status",
    [
        ("GET", "/api/v1/tasks", HTTPStatus.OK),
        ("GET", "/api/v1/tasks/{id}", HTTPStatus.OK),
        ("PUT", "/api/v1/tasks/{id}", HTTPStatus.OK),
        ("PATCH", "/api/v1/tasks/{id}", HTTPStatus.OK),
        ("DELETE", "/api/v1/tasks/{id}", HTTPStatus.NO_CONTENT),
        ("GET", "/api/{user_id}/tasks", HTTPStatus.OK),
        ("GET", "/api/{user_id}/tasks/{id}", HTTPStatus.OK),
        ("PUT", "/api/{user_id}/tasks/{id}", HTTPStatus.OK),
        ("PATCH", "/api/{user_id}/tasks/{id}", HTTPStatus.OK),
        ("DELETE", "/api/{user_id}/tasks/{id}", HTTPStatus.NO_CONTENT),
        ("PATCH", "/api/{user_id}/tasks/{id}/complete", HTTPStatus.OK),
    ],
)
def test_every_task_route_goes_through_the_one_ownership_filter(
    alice, alices_task, owned_by_calls, method, path, expected_status
):
    body = WRITES["PUT"] if method in ("PUT", "PATCH") and not path.endswith("complete") else None

    response = send(alice, method, path.format(id=alices_task.pk, user_id=alice.sub), body)

    assert response.status_code == expected_status
    calls, compiled_owners = owned_by_calls
    # Each owned_by was for Alice, or built a compiled query that then ran with Alice's id.
    markers = {call for call in calls if call != alice.sub}
    assert calls
    assert all(MARKER_BASE <= marker < 0 for marker in markers)
    assert bool(markers) == bool(compiled_owners)
    assert set(compiled_owners) <= {User.objects.get(sub=alice.sub).pk}
