"""A page of tasks costs a fixed number of queries, however many tasks and tags it holds (no N+1), and
one task with its tags costs one."""

from http import HTTPStatus

import pytest


def create(client, n, tags):
    response = client.post("/api/v1/tasks", {"title": f"t{n}", "tags": tags}, format="json")
    assert response.status_code == HTTPStatus.CREATED, response.content


@pytest.mark.parametrize("family", ["v1", "compat"])
def test_a_page_of_twenty_tagged_tasks_costs_one_query(alice, family, django_assert_num_queries):
    path = "/api/v1/tasks?limit=20" if family == "v1" else f"/api/{alice.sub}/tasks"
    for n in range(20):
        create(alice, n, [f"tag{n}", f"tag{n + 1}", "shared"])
    alice.get(path)  # the token cache now knows the caller: authentication costs no query

    # The tasks with their tags' names (and their total, on v1), in one query.
    with django_assert_num_queries(1):
        response = alice.get(path)

    tasks = response.json()["results"] if family == "v1" else response.json()
    assert len(tasks) == 20
    assert all(len(task["tags"]) == 3 for task in tasks)


def test_each_tag_filter_costs_one_query_to_find_the_tag(alice, django_assert_num_queries):
    for n in range(20):
        create(alice, n, ["a", "b"])
    alice.get("/api/v1/tasks")

    with django_assert_num_queries(3):
        response = alice.get("/api/v1/tasks?tag=a&tag=b")

    assert response.json()["count"] == 20


def test_one_task_with_its_tags_costs_one_query(alice, django_assert_num_queries):
    create(alice, 0, ["b", "A"])
    task_id = alice.get("/api/v1/tasks").json()["results"][0]["id"]

    with django_assert_num_queries(1):
        response = alice.get(f"/api/v1/tasks/{task_id}")

    assert response.json()["tags"] == ["A", "b"]
