"""The compiled queries (tasks/compiled.py) answer exactly as the ORM querysets they are compiled from."""

import threading
from http import HTTPStatus

import pytest
from django.db.models.functions import Upper

from authbridge.models import User
from tasks.compiled import CompiledQuery
from tasks.models import TagNames, Task
from tasks.pagination import task_page
from tasks.representation import task_rows
from tasks.serializers import TaskSerializer
from tasks.views import DEFAULT_LIST, DEFAULT_LIST_PAGE, ONE_TASK, owned_tasks


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
    orm_rows = task_rows(owned_tasks(owner))

    compiled = DEFAULT_LIST_PAGE.dicts((offset, limit), owner=owner.pk)

    assert compiled == list(task_page(orm_rows, offset, limit))


def test_the_compiled_whole_list_is_the_orm_list(alice, bob, alices_tasks):
    create(bob, "bob's")
    owner = user(alice)

    compiled = DEFAULT_LIST.dicts(owner=owner.pk)

    assert compiled == list(task_rows(owned_tasks(owner)))
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


def test_compiled_rows_keep_the_order_values_gives_its_fields_and_annotations(alice, alices_tasks):
    # Since Django 5.2 the columns follow values()'s order, an annotation before a field included.
    def build(owner):
        return Task.objects.filter(owner=owner).annotate(shout=Upper("title")).values("shout", "title", "id")

    owner = user(alice).pk

    compiled = CompiledQuery(build).dicts(owner=owner)

    assert compiled == list(build(owner))
    assert compiled[0]["shout"] == compiled[0]["title"].upper()


def test_compiled_instances_leave_deferred_fields_deferred_as_the_orm_does(alice, alices_tasks):
    def build(owner, pk):
        return Task.objects.filter(owner=owner, pk=pk).only("title").order_by()

    owner, task_id = user(alice).pk, alices_tasks[2]["id"]

    [found] = CompiledQuery(build).instances(owner=owner, pk=task_id)

    orm = build(owner, task_id).get()
    assert found.get_deferred_fields() == orm.get_deferred_fields() != set()
    assert (found.pk, found.title) == (orm.pk, orm.title) == (task_id, "task 2")
    assert found.description == orm.description  # loaded on first use, like the ORM's


def owned(owner):
    return Task.objects.filter(owner=owner)


@pytest.mark.parametrize(
    "build, refusal",
    [
        (lambda owner: owned(owner).select_related("owner"), r"select_related\(\)"),
        (lambda owner: owned(owner).prefetch_related("tags"), r"prefetch_related\(\)"),
        (lambda owner: owned(owner).values("title").prefetch_related("tags"), r"prefetch_related\(\)"),
        (lambda owner: owned(owner).select_for_update(), r"select_for_update\(\)"),
        (lambda owner: owned(owner).values_list("title"), r"not ValuesListIterable rows"),
        (lambda owner: owned(owner).values_list("title", flat=True), r"not FlatValuesListIterable rows"),
        (lambda owner: owned(owner).values_list("title", named=True), r"not NamedValuesListIterable rows"),
        (lambda owner: owned(owner).dates("created_at", "day"), r"not FlatValuesListIterable rows"),
        (lambda owner: User(pk=owner).tasks.all(), r"a related manager's queryset"),
        (lambda owner: list(owned(owner)), r"needs a QuerySet, not list"),
    ],
    ids=[
        "select_related",
        "prefetch_related",
        "prefetch_related_on_values",
        "select_for_update",
        "values_list",
        "values_list_flat",
        "values_list_named",
        "dates",
        "related_manager",
        "not_a_queryset",
    ],
)
def test_a_queryset_it_would_mishandle_is_refused_when_it_is_compiled(db, build, refusal):
    query = CompiledQuery(build)

    with pytest.raises(TypeError, match=refusal):
        query.compiled(None, ["owner"])
    with pytest.raises(TypeError, match=refusal):
        query.instances(owner=1)


def test_a_values_queryset_is_refused_as_instances(db):
    query = CompiledQuery(lambda owner: owned(owner).values("title"))

    with pytest.raises(TypeError, match=r"instances\(\) needs a queryset of model instances; use dicts\(\)"):
        query.instances(owner=1)
    assert query.dicts(owner=1) == []


def test_a_model_queryset_is_refused_as_dicts(db):
    query = CompiledQuery(owned)

    with pytest.raises(TypeError, match=r"dicts\(\) needs a \.values\(\) queryset; use instances\(\)"):
        query.dicts(owner=1)
    assert query.instances(owner=1) == []


def test_a_build_that_gives_dicts_for_one_variant_and_instances_for_another_is_refused(db):
    query = CompiledQuery(lambda as_dicts, owner: owned(owner).values("title") if as_dicts else owned(owner))
    assert query.dicts(True, owner=1) == []

    with pytest.raises(TypeError, match=r"gave dicts for one variant and instances for another"):
        query.instances(False, owner=1)


def test_a_value_that_does_not_reach_the_parameters_unchanged_is_refused(db):
    # Its marker would be baked into the SQL, and every run would use it instead of the request's value.
    query = CompiledQuery(lambda owner, pk: owned(owner).filter(title=str(pk)))

    with pytest.raises(ValueError, match=r"\['pk'\] not found among the compiled query's parameters"):
        query.instances(owner=1, pk=2)
