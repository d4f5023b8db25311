"""The compiled queries (tasks/compiled.py) answer exactly as the ORM querysets they are compiled from."""

import threading
from http import HTTPStatus

import pytest

from authbridge.models import User
from tasks.models import TagNames, Task
from tasks.representation import task_rows
from tasks.serializers import TaskSerializer
from tasks.views import DEFAULT_LIST, DEFAULT_LIST_PAGE, DEFAULT_ORDERING, ONE_TASK, task_page


def create(client, title, **fields):
    response = client.post("/api/v1/tasks", {"title": title, **fields}, format="json")
    assert response.status_code == HTTPStatus.CREATED, response.content
    return response.json()


@pytest.fixture
def alices_tasks(alice):
    tasks = [create(alice, f"task {n}", tags=["home"] if n % 2 else []) for n in range(7)]
    create(alice, "due", due_at="2026-12-01T17:00:00Z", priority="high", completed=True)
    return tasks


def user(client):
    return User.objects.get(sub=client.sub)


@pytest.mark.parametrize("offset, limit", [(0, 20), (2, 3), (7, 5), (8, 1), (50, 10)])
def test_a_compiled_page_is_the_orm_page(alice, bob, alices_tasks, offset, limit):
    create(bob, "bob's")
    owner = user(alice)
    orm_rows = task_rows(Task.objects.owned_by(owner).order_by(*DEFAULT_ORDERING))

    compiled = DEFAULT_LIST_PAGE.dicts((offset, limit), owner=owner.pk)

    assert compiled == list(task_page(orm_rows, offset, limit))


def test_the_compiled_whole_list_is_the_orm_list(alice, bob, alices_tasks):
    create(bob, "bob's")
    owner = user(alice)

    compiled = DEFAULT_LIST.dicts(owner=owner.pk)

    assert compiled == list(task_rows(Task.objects.owned_by(owner).order_by(*DEFAULT_ORDERING)))
    assert len(compiled) == 8


def test_a_compiled_task_lookup_is_the_orm_lookup_and_finds_only_the_owners_tasks(alice, bob, alices_tasks):
    alices_id = alices_tasks[3]["id"]
    create(bob, "bob's")

    [found] = ONE_TASK.instances(owner=user(alice).pk, pk=alices_id)

    orm = Task.objects.owned_by(user(alice)).annotate(tag_names=TagNames()).get(pk=alices_id)
    assert [getattr(found, field.attname) for field in Task._meta.concrete_fields] == [
        getattr(orm, field.attname) for field in Task._meta.concrete_fields
    ]
    assert found.tag_names == orm.tag_names == ["home"]
    assert found._state.adding is False and found._state.db == "default"
    assert ONE_TASK.instances(owner=user(bob).pk, pk=alices_id) == []


@pytest.mark.parametrize("query", ["limit=3", "limit=3&offset=2", "offset=6", "", "limit=5&offset=40"])
def test_the_unfiltered_list_answers_as_the_filtered_one_with_the_same_order(alice, alices_tasks, query):
    # `ordering` sends the request down the ORM path (filter backends); without it, the compiled one.
    compiled = alice.get(f"/api/v1/tasks?{query}")
    orm = alice.get(f"/api/v1/tasks?{query}&ordering=-created_at")

    assert compiled.status_code == orm.status_code == HTTPStatus.OK
    body, orm_body = compiled.json(), orm.json()
    assert body["results"] == orm_body["results"]
    assert body["count"] == orm_body["count"] == 8


def test_the_unfiltered_compatibility_list_answers_as_the_filtered_one(alice, alices_tasks):
    compiled = alice.get(f"/api/{alice.sub}/tasks")
    orm = alice.get(f"/api/{alice.sub}/tasks?ordering=-created_at")

    assert compiled.status_code == orm.status_code == HTTPStatus.OK
    assert compiled.json() == orm.json()
    assert len(compiled.json()) == 8


def test_each_thread_compiles_its_own_query(alice, alices_tasks):
    owner = user(alice).pk
    here = DEFAULT_LIST_PAGE.compiled((0, 20), ["owner"])
    elsewhere = []
    thread = threading.Thread(target=lambda: elsewhere.append(DEFAULT_LIST_PAGE.compiled((0, 20), ["owner"])))
    thread.start()
    thread.join()

    assert DEFAULT_LIST_PAGE.compiled((0, 20), ["owner"]) is here  # reused in this thread
    assert elsewhere[0].compiler is not here.compiler and elsewhere[0].sql == here.sql
    assert len(DEFAULT_LIST_PAGE.dicts((0, 20), owner=owner)) == 8


def test_tag_names_read_with_a_task_are_forgotten_when_the_task_is_read_again(alice, alices_tasks):
    task_id = alices_tasks[1]["id"]
    [task] = ONE_TASK.instances(owner=user(alice).pk, pk=task_id)
    assert TaskSerializer(task).data["tags"] == ["home"]
    alice.patch(f"/api/v1/tasks/{task_id}", {"tags": ["garden", "Errands"]}, format="json")

    task.refresh_from_db()  # as Task.write does when another write came first

    assert not hasattr(task, "tag_names")
    assert TaskSerializer(task).data["tags"] == ["Errands", "garden"]


def test_tag_names_of_a_task_without_tags_are_an_empty_list(alice, alices_tasks):
    [task] = ONE_TASK.instances(owner=user(alice).pk, pk=alices_tasks[0]["id"])
    assert task.tag_names == []
