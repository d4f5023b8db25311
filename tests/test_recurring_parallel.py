"""Parallel completions of one recurring occurrence through gunicorn (two workers of four threads) on
PostgreSQL: however many requests race to complete it, it gets exactly one successor (issue 23)."""

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from http import HTTPStatus

import psycopg
import pytest
from django.db import connection

from tests.live_server import LiveServer, hs256_token
from tests.support.api import iso
from tests.support.parallel import PARALLEL, in_parallel

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="the race needs PostgreSQL's row locks; SQLite lets one writer in at a time",
    ),
]

ROUNDS = 3
WEEK = timedelta(weeks=1)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(tmp_path_factory.mktemp("recurring"))
    yield live
    live.stop()


def new_user(server):
    sub = f"recurring-{uuid.uuid4().hex}"
    token = hs256_token(sub, email=f"{sub}@example.com", name="Parallel")
    assert server.request("GET", "/api/v1/me", token=token)[0] == HTTPStatus.OK
    return sub, token


def weekly_task(server, token, title):
    """A weekly occurrence due in two days (in UTC, so the next one is exactly a week later)."""
    due_at = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=2)
    body = {"title": title, "recurrence": "FREQ=WEEKLY", "due_at": iso(due_at), "remind_at": iso(due_at)}
    status, task, _ = server.request("POST", "/api/v1/tasks", token=token, body=body)
    assert status == HTTPStatus.CREATED, task
    return task, due_at


def occurrences(server, sub, title):
    """{due_at: [ids]} of the user's tasks with this title, read from the database itself."""
    with psycopg.connect(server.database_url) as database:
        rows = database.execute(
            "SELECT task.due_at, task.id FROM tasks_task task JOIN authbridge_user owner "
            "ON owner.id = task.owner_id WHERE owner.sub = %s AND task.title = %s ORDER BY task.id",
            [sub, title],
        ).fetchall()
    found = {}
    for due_at, task_id in rows:
        found.setdefault(due_at, []).append(task_id)
    return found


def actions(server, task_id):
    """{action: how many} of the changes recorded for one task."""
    with psycopg.connect(server.database_url) as database:
        rows = database.execute(
            "SELECT action, count(*) FROM tasks_change WHERE task_id = %s GROUP BY action", [task_id]
        ).fetchall()
    return dict(rows)


def test_sixteen_parallel_completions_of_one_occurrence_create_one_successor(server):
    sub, token = new_user(server)
    for round_ in range(ROUNDS):
        title = f"Weekly {round_}"
        task, due_at = weekly_task(server, token, title)
        detail = f"/api/v1/tasks/{task['id']}"

        results = in_parallel(
            [lambda detail=detail: server.request("PATCH", detail, token=token, body={"completed": True})]
            * PARALLEL
        )

        assert [status for status, _, _ in results] == [HTTPStatus.OK] * PARALLEL
        found = occurrences(server, sub, title)
        assert sorted(found) == [due_at, due_at + WEEK]
        assert found[due_at] == [task["id"]]
        [successor_id] = found[due_at + WEEK]
        # The winner answers with the successor it created; each loser, with the task as it now is.
        assert {body["next_occurrence"] for _, body, _ in results} == {successor_id}
        assert {body["completed"] for _, body, _ in results} == {True}
        # One write completed it; the fifteen that lost the race changed nothing but its version.
        assert actions(server, task["id"]) == {"created": 1, "completed": 1, "updated": PARALLEL - 1}
        assert actions(server, successor_id) == {"created": 1}
        status, successor, _ = server.request("GET", f"/api/v1/tasks/{successor_id}", token=token)
        assert status == HTTPStatus.OK
        following = iso(due_at + WEEK)
        assert successor == {
            **task,
            "id": successor_id,
            "due_at": following,
            "remind_at": following,
            "created_at": successor["created_at"],
            "updated_at": successor["updated_at"],
        }


def test_parallel_completions_and_toggles_of_one_occurrence_create_at_most_one_successor(server):
    sub, token = new_user(server)
    for round_ in range(ROUNDS):
        title = f"Mixed {round_}"
        task, due_at = weekly_task(server, token, title)
        detail = f"/api/v1/tasks/{task['id']}"
        toggle = f"/api/{sub}/tasks/{task['id']}/complete"
        calls = []
        for _ in range(PARALLEL // 2):
            calls.append(
                lambda detail=detail: server.request("PATCH", detail, token=token, body={"completed": True})
            )
            calls.append(lambda toggle=toggle: server.request("PATCH", toggle, token=token))

        results = in_parallel(calls)

        statuses = Counter(status for status, _, _ in results)
        assert statuses == {HTTPStatus.OK: PARALLEL}
        found = occurrences(server, sub, title)
        # Whatever order the writes land in, the first of them completes the open task: exactly one
        # successor, and every write after it sees it, whether it leaves the task completed or open.
        assert sorted(found) == [due_at, due_at + WEEK]
        assert found[due_at] == [task["id"]]
        [successor_id] = found[due_at + WEEK]
        assert {body["next_occurrence"] for _, body, _ in results} == {successor_id}
        assert actions(server, successor_id) == {"created": 1}
        # The toggles leave it open or completed, by the order the writes landed in; completing it
        # once more (again, or for the first time since a toggle reopened it) still makes no second.
        assert server.request("PATCH", detail, token=token, body={"completed": True})[0] == HTTPStatus.OK
        assert occurrences(server, sub, title) == found
