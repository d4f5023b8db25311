"""Every write of a task is one transaction that ends with one INSERT of its change: the task, its
tags and the record the change feed reads commit together, or not at all."""

from http import HTTPStatus

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)  # the test's own transaction would hide the code's


def statements(client, method, path, body=None):
    """(first word, writes the change table?, inside a transaction?) of each statement the request sends."""
    seen = []

    def spy(execute, sql, params, many, context):
        word = sql.split()[0]
        if word != "BEGIN":  # SQLite's BEGIN IMMEDIATE passes here too, just before the block starts
            seen.append((word, "INSERT INTO tasks_change" in sql, connection.in_atomic_block))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(spy):
        response = getattr(client, method)(path, body, format="json")
    assert response.status_code in (HTTPStatus.OK, HTTPStatus.CREATED, HTTPStatus.NO_CONTENT), (
        response.content
    )
    return seen


def writes(seen):
    return [statement for statement in seen if statement[0] not in ("SELECT", "SAVEPOINT", "RELEASE")]


@pytest.fixture
def task_path(alice):
    task_id = alice.post("/api/v1/tasks", {"title": "t", "tags": ["a"]}, format="json").json()["id"]
    return f"/api/v1/tasks/{task_id}"


def test_a_task_created_without_tags_is_its_insert_and_its_change_in_one_transaction(alice, task_path):
    seen = statements(alice, "post", "/api/v1/tasks", {"title": "plain"})

    assert writes(seen) == [("INSERT", False, True), ("WITH", True, True)]


def test_a_task_created_with_tags_is_written_in_one_transaction_ending_with_its_change(alice, task_path):
    seen = writes(statements(alice, "post", "/api/v1/tasks", {"title": "tagged", "tags": ["a", "b"]}))

    assert all(inside for _, _, inside in seen)
    assert [records for _, records, _ in seen].count(True) == 1
    assert seen[-1][1] is True


def test_an_update_without_tags_is_one_update_and_its_change(alice, task_path):
    seen = writes(statements(alice, "patch", task_path, {"completed": True}))

    assert seen == [("UPDATE", False, True), ("WITH", True, True)]


@pytest.mark.parametrize("tags", [["b"], []], ids=["replaced", "cleared"])
def test_an_update_of_the_tags_is_written_in_one_transaction(alice, task_path, tags):
    seen = writes(statements(alice, "patch", task_path, {"title": "renamed", "tags": tags}))

    assert ("UPDATE", False, True) in seen and ("DELETE", False, True) in seen
    assert all(inside for _, _, inside in seen)
    assert seen[-1][1] is True
    assert alice.get(task_path).json()["tags"] == tags


def test_a_delete_is_one_transaction_ending_with_its_change(alice, task_path):
    seen = writes(statements(alice, "delete", task_path))

    assert all(inside for _, _, inside in seen)
    assert [records for _, records, _ in seen] == [False] * (len(seen) - 1) + [True]
