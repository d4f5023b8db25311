"""A page of tasks costs a fixed number of queries, however many tasks and tags it holds (no N+1)."""

from http import HTTPStatus

import pytest


def create(client, n, tags):
    response = client.post("/api/v1/tasks", {"title": f"t{n}", "tags": tags}, format="json")
    assert response.status_code == HTTPStatus.CREATED, response.content


@pytest.mark.parametrize("family", ["v1", "compat"])
def test_a_page_of_twenty_tagged_tasks_costs_two_queries(alice, family, django_assert_num_queries):
    path = "/api/v1/tasks?limit=20" if family == "v1" else f"/api/{alice.sub}/tasks"
    for n in range(20):
        create(alice, n, [f"tag{n}", f"tag{n + 1}", "shared"])
    alice.get(path)  # the token cache now knows the caller: authentication costs no query

    # The tasks (with their total, on v1) in one query, and the tags of all of them in one more.
    with django_assert_num_queries(2):
        response = alice.get(path)

    tasks = response.json()["results"] if family == "v1" else response.json()
    assert len(tasks) == 20
    assert all(len(task["tags"]) == 3 for task in tasks)


def test_each_tag_filter_costs_one_query_to_find_the_tag(alice, django_assert_num_queries):
    for n in range(20):
        create(alice, n, ["a", "b"])
    alice.get("/api/v1/tasks")

    with django_assert_num_queries(4):
        response = alice.get("/api/v1/tasks?tag=a&tag=b")

    assert response.json()["count"] == 20
