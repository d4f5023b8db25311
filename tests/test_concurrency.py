"""Parallel requests against a live server: gunicorn with two workers of four threads, on PostgreSQL."""

import uuid
from collections import Counter
from http import HTTPStatus

import psycopg
import pytest

from tests.live_server import LiveServer, hs256_token
from tests.support.parallel import PARALLEL, in_parallel

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(tmp_path_factory.mktemp("concurrency"))
    yield live
    live.stop()


def new_user(server):
    sub = f"user-{uuid.uuid4().hex}"
    token = hs256_token(sub, email=f"{sub}@example.com", name="Parallel")
    assert server.request("GET", "/api/v1/me", token=token)[0] == HTTPStatus.OK
    return sub, token


def create_task(server, token, title="Shared"):
    status, body, _ = server.request("POST", "/api/v1/tasks", token=token, body={"title": title})
    assert status == HTTPStatus.CREATED, body
    return body["id"]


def test_fifty_parallel_creates_by_one_user_make_exactly_fifty_tasks(server):
    _, token = new_user(server)

    results = in_parallel(
        lambda n=n: server.request("POST", "/api/v1/tasks", token=token, body={"title": f"Task {n}"})
        for n in range(50)
    )

    assert [status for status, _, _ in results] == [HTTPStatus.CREATED] * 50
    ids = {body["id"] for _, body, _ in results}
    assert len(ids) == 50
    status, page, _ = server.request("GET", "/api/v1/tasks?limit=100", token=token)
    assert status == HTTPStatus.OK
    assert page["count"] == 50
    assert {task["id"] for task in page["results"]} == ids
    assert {task["title"] for task in page["results"]} == {f"Task {n}" for n in range(50)}


def test_parallel_patch_toggle_and_delete_of_one_task_never_fail(server):
    sub, token = new_user(server)
    for _ in range(3):
        task_id = create_task(server, token)
        detail = f"/api/v1/tasks/{task_id}"
        calls = []
        for n in range(8):
            calls.append(
                lambda n=n, detail=detail: server.request(
                    "PATCH", detail, token=token, body={"title": f"Edit {n}"}
                )
            )
            calls.append(
                lambda detail=detail: server.request(
                    "PUT", detail, token=token, body={"title": "Put", "completed": True}
                )
            )
            toggle = f"/api/{sub}/tasks/{task_id}/complete"
            calls.append(lambda toggle=toggle: server.request("PATCH", toggle, token=token))
        calls[12:12] = [lambda detail=detail: server.request("DELETE", detail, token=token)] * 4

        statuses = Counter(status for status, _, _ in in_parallel(calls))

        assert set(statuses) <= {HTTPStatus.OK, HTTPStatus.NO_CONTENT, HTTPStatus.NOT_FOUND}, statuses
        assert statuses[HTTPStatus.NO_CONTENT] >= 1
        # Deleted stays deleted: no write that raced the delete brings the task back.
        assert server.request("GET", detail, token=token)[0] == HTTPStatus.NOT_FOUND


def test_parallel_first_requests_of_a_new_user_all_succeed_and_create_one_user(server):
    sub = f"newcomer-{uuid.uuid4().hex}"
    tokens = [
        hs256_token(sub, email=f"{sub}@example.com", name="Newcomer", jti=str(n)) for n in range(PARALLEL)
    ]

    results = in_parallel(
        lambda token=token: server.request("GET", "/api/v1/me", token=token) for token in tokens
    )

    assert [status for status, _, _ in results] == [HTTPStatus.OK] * PARALLEL
    assert {body["id"] for _, body, _ in results} == {sub}
    with psycopg.connect(server.database_url) as connection:
        assert connection.execute(
            "SELECT count(*) FROM authbridge_user WHERE sub = %s", [sub]
        ).fetchone() == (1,)


def test_parallel_first_writes_of_a_new_user_all_land_on_one_user(server):
    sub = f"writer-{uuid.uuid4().hex}"
    tokens = [hs256_token(sub, jti=str(n)) for n in range(PARALLEL)]

    results = in_parallel(
        lambda token=token: server.request("POST", f"/api/{sub}/tasks", token=token, body={"title": "First"})
        for token in tokens
    )

    assert [status for status, _, _ in results] == [HTTPStatus.CREATED] * PARALLEL
    status, listed, _ = server.request("GET", f"/api/{sub}/tasks", token=tokens[0])
    assert status == HTTPStatus.OK
    assert len(listed) == PARALLEL


def test_parallel_creates_of_the_same_new_tag_all_succeed_and_make_one_tag(server):
    sub, token = new_user(server)
    for round_ in range(3):
        spellings = [f"Tag{round_}", f"TAG{round_}", f"tag{round_}", f"tAg{round_}"]
        # Other new tags in opposite orders as well: no two requests may deadlock on them.
        bodies = [
            {"title": f"Task {n}", "tags": [spellings[n % 4], *(["x", "y"] if n % 2 else ["Y", "X"])]}
            for n in range(PARALLEL)
        ]

        results = in_parallel(
            lambda body=body: server.request("POST", "/api/v1/tasks", token=token, body=body)
            for body in bodies
        )

        assert [status for status, _, _ in results] == [HTTPStatus.CREATED] * PARALLEL, results
        assert len({body["tags"][0] for _, body, _ in results}) == 1
    status, tags, _ = server.request("GET", "/api/v1/tags", token=token)
    assert status == HTTPStatus.OK
    assert sorted(tag["name"].lower() for tag in tags) == ["tag0", "tag1", "tag2", "x", "y"]
    assert {tag["count"] for tag in tags} == {PARALLEL, 3 * PARALLEL}
    with psycopg.connect(server.database_url) as connection:
        assert connection.execute(
            "SELECT count(*) FROM tasks_tag JOIN authbridge_user u ON u.id = owner_id WHERE u.sub = %s", [sub]
        ).fetchone() == (5,)
