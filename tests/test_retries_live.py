"""Safe retries and concurrent edits under gunicorn with several workers, on PostgreSQL, with real
parallel requests: one write per If-Match, one task per Idempotency-Key."""

import uuid
from collections import Counter
from http import HTTPStatus

import psycopg
import pytest

from tests.live_server import LiveServer, hs256_token
from tests.support.parallel import PARALLEL, in_parallel

pytestmark = pytest.mark.live

ROUNDS = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(tmp_path_factory.mktemp("retries"), workers=3, threads=4)
    yield live
    live.stop()


def new_user(server):
    sub = f"user-{uuid.uuid4().hex}"
    token = hs256_token(sub)
    assert server.request("GET", "/api/v1/me", token=token)[0] == HTTPStatus.OK
    return sub, token


def task_count(server, sub):
    with psycopg.connect(server.database_url) as connection:
        return connection.execute(
            "SELECT count(*) FROM tasks_task JOIN authbridge_user u ON u.id = owner_id WHERE u.sub = %s",
            [sub],
        ).fetchone()[0]


def create_task(server, token):
    """(path, ETag) of a new task."""
    status, created, headers = server.request("POST", "/api/v1/tasks", token=token, body={"title": "t"})
    assert status == HTTPStatus.CREATED
    return f"/api/v1/tasks/{created['id']}", headers["ETag"]


def patch_in_parallel(server, token, path, etag):
    return in_parallel(
        lambda n=n: server.request(
            "PATCH", path, token=token, body={"title": f"Edit {n}"}, headers={"If-Match": etag}
        )
        for n in range(PARALLEL)
    )


@pytest.mark.parametrize("round_number", range(ROUNDS))
def test_of_parallel_patches_with_one_if_match_exactly_one_lands(server, round_number):
    _, token = new_user(server)
    path, etag = create_task(server, token)

    results = patch_in_parallel(server, token, path, etag)

    statuses = Counter(status for status, _, _ in results)
    assert statuses == {HTTPStatus.OK: 1, HTTPStatus.PRECONDITION_FAILED: PARALLEL - 1}, statuses
    [(winner, winner_headers)] = [
        (body, headers) for status, body, headers in results if status == HTTPStatus.OK
    ]
    _, current, current_headers = server.request("GET", path, token=token)
    assert current == winner
    assert current_headers["ETag"] == winner_headers["ETag"] != etag


@pytest.mark.parametrize("round_number", range(ROUNDS))
def test_of_parallel_puts_toggles_and_deletes_with_one_if_match_exactly_one_lands(server, round_number):
    sub, token = new_user(server)
    detail, etag = create_task(server, token)
    toggle = f"/api/{sub}/tasks/{detail.rsplit('/', 1)[1]}/complete"
    condition = {"If-Match": etag}
    calls = [
        lambda: server.request("PUT", detail, token=token, body={"title": "Put"}, headers=condition),
        lambda: server.request("PATCH", toggle, token=token, headers=condition),
        lambda: server.request("DELETE", detail, token=token, headers=condition),
    ] * (PARALLEL // 3)

    statuses = Counter(status for status, _, _ in in_parallel(calls))

    successes = statuses[HTTPStatus.OK] + statuses[HTTPStatus.NO_CONTENT]
    assert successes == 1, statuses
    # After a winning DELETE the others may find no task at all.
    assert statuses[HTTPStatus.PRECONDITION_FAILED] + statuses[HTTPStatus.NOT_FOUND] == len(calls) - 1


def test_parallel_toggles_without_if_match_lose_no_toggle(server):
    sub, token = new_user(server)
    _, created, _ = server.request("POST", "/api/v1/tasks", token=token, body={"title": "t"})
    toggle = f"/api/{sub}/tasks/{created['id']}/complete"
    count = PARALLEL + 1

    results = in_parallel(lambda: server.request("PATCH", toggle, token=token) for _ in range(count))

    assert [status for status, _, _ in results] == [HTTPStatus.OK] * count
    _, task, _ = server.request("GET", f"/api/v1/tasks/{created['id']}", token=token)
    assert task["completed"] is True  # an odd number of toggles
    assert len({headers["ETag"] for _, _, headers in results}) == count


@pytest.mark.parametrize("round_number", range(ROUNDS))
@pytest.mark.parametrize("route", ["v1", "compat"])
def test_parallel_creates_with_one_idempotency_key_make_exactly_one_task(server, route, round_number):
    sub, token = new_user(server)
    path = "/api/v1/tasks" if route == "v1" else f"/api/{sub}/tasks"
    key = {"Idempotency-Key": str(uuid.uuid4())}

    results = in_parallel(
        lambda: server.request("POST", path, token=token, body={"title": "Once"}, headers=key)
        for _ in range(PARALLEL)
    )

    statuses = Counter(status for status, _, _ in results)
    assert set(statuses) <= {HTTPStatus.CREATED, HTTPStatus.CONFLICT}, statuses
    created = [(body, headers) for status, body, headers in results if status == HTTPStatus.CREATED]
    assert len({body["id"] for body, _ in created}) == 1
    assert [headers.get("Idempotent-Replayed") for _, headers in created].count(None) == 1
    assert len({headers["Location"] for _, headers in created}) == 1
    assert task_count(server, sub) == 1


def test_parallel_creates_with_one_key_and_different_bodies_make_one_task_and_422s(server):
    sub, token = new_user(server)
    key = str(uuid.uuid4())

    results = in_parallel(
        lambda n=n: server.request(
            "POST",
            "/api/v1/tasks",
            token=token,
            body={"title": f"Body {n % 2}"},
            headers={"Idempotency-Key": key},
        )
        for n in range(PARALLEL)
    )

    statuses = Counter(status for status, _, _ in results)
    assert set(statuses) <= {HTTPStatus.CREATED, HTTPStatus.UNPROCESSABLE_ENTITY, HTTPStatus.CONFLICT}
    assert statuses[HTTPStatus.UNPROCESSABLE_ENTITY] == PARALLEL // 2, statuses
    assert task_count(server, sub) == 1
