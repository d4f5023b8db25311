"""A task written alone is one statement, atomic by itself, sent without BEGIN and COMMIT around it;
a write that changes the task's tags too runs in one transaction, so the task and its tags commit
together (and the task's version, its ETag, covers them)."""

from http import HTTPStatus

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)  # the test's own transaction would hide the code's


def statements(client, method, path, body):
    """(first word, inside a transaction?) of each statement the request sends."""
    seen = []

    def spy(execute, sql, params, many, context):
        word = sql.split()[0]
        if word != "BEGIN":  # SQLite's BEGIN IMMEDIATE passes here too, just before the block starts
            seen.append((word, connection.in_atomic_block))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(spy):
        response = getattr(client, method)(path, body, format="json")
    assert response.status_code in (HTTPStatus.OK, HTTPStatus.CREATED), response.content
    return seen


@pytest.fixture
def task_path(alice):
    task_id = alice.post("/api/v1/tasks", {"title": "t", "tags": ["a"]}, format="json").json()["id"]
    return f"/api/v1/tasks/{task_id}"


def test_a_task_created_without_tags_is_one_insert_outside_a_transaction(alice, task_path):
    assert statements(alice, "post", "/api/v1/tasks", {"title": "plain"}) == [("INSERT", False)]


def test_a_task_created_with_tags_is_written_in_one_transaction(alice, task_path):
    seen = statements(alice, "post", "/api/v1/tasks", {"title": "tagged", "tags": ["a", "b"]})
    assert ("INSERT", True) in seen
    assert all(inside for _, inside in seen)


def test_an_update_without_tags_is_one_update_outside_a_transaction(alice, task_path):
    seen = statements(alice, "patch", task_path, {"completed": True})
    assert [statement for statement in seen if statement[0] != "SELECT"] == [("UPDATE", False)]


@pytest.mark.parametrize("tags", [["b"], []], ids=["replaced", "cleared"])
def test_an_update_of_the_tags_is_written_in_one_transaction(alice, task_path, tags):
    seen = statements(alice, "patch", task_path, {"title": "renamed", "tags": tags})
    writes = [inside for word, inside in seen if word != "SELECT"]
    assert ("UPDATE", True) in seen and ("DELETE", True) in seen
    assert all(writes)
    assert alice.get(task_path).json()["tags"] == tags
