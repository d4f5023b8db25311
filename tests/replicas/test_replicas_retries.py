"""Safe retries across replicas (issue 11's contract): an Idempotency-Key and an If-Match race spread
over three replicas behave as on one, because their state lives in the shared database."""

import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus

import pytest

from tests.live_server import hs256_token
from tests.replicas.cluster import REPLICAS

pytestmark = pytest.mark.live

PARALLEL = 9  # three rounds of the round robin


def in_parallel(call, arguments):
    with ThreadPoolExecutor(max_workers=len(arguments)) as pool:
        return list(pool.map(call, arguments))


def test_an_idempotency_key_repeated_on_every_replica_creates_one_task(balancer):
    sub = f"alice-{uuid.uuid4().hex}"
    token = hs256_token(sub)
    headers = {"Idempotency-Key": str(uuid.uuid4())}

    def create(_):
        return balancer.request("POST", "/api/v1/tasks", token=token, body={"title": "Once"}, headers=headers)

    results = in_parallel(create, range(PARALLEL))
    replay = create(None)

    statuses = Counter(status for status, _, _ in results)
    assert set(statuses) <= {HTTPStatus.CREATED, HTTPStatus.CONFLICT}, statuses
    assert {headers["x-served-by"] for _, _, headers in results} == set(REPLICAS)
    created_ids = {body["id"] for status, body, _ in results if status == HTTPStatus.CREATED}
    assert len(created_ids) == 1
    assert replay[0] == HTTPStatus.CREATED
    assert replay[1]["id"] in created_ids
    assert replay[2]["idempotent-replayed"] == "true"
    owned = "SELECT count(*) FROM tasks_task JOIN authbridge_user ON tasks_task.owner_id = authbridge_user.id"
    assert balancer.query(f"{owned} WHERE authbridge_user.sub = %s", [sub]) == [(1,)]


def test_an_if_match_race_spread_over_the_replicas_lets_exactly_one_write_win(balancer):
    token = hs256_token(f"bob-{uuid.uuid4().hex}")
    status, task, headers = balancer.request("POST", "/api/v1/tasks", token=token, body={"title": "Draft"})
    assert status == HTTPStatus.CREATED
    detail = f"/api/v1/tasks/{task['id']}"

    def edit(n):
        body = {"title": f"Edit {n}"}
        return balancer.request(
            "PATCH", detail, token=token, body=body, headers={"If-Match": headers["etag"]}
        )

    results = in_parallel(edit, range(PARALLEL))

    assert sorted(status for status, _, _ in results) == [HTTPStatus.OK] + [
        HTTPStatus.PRECONDITION_FAILED
    ] * (PARALLEL - 1)
    assert {headers["x-served-by"] for _, _, headers in results} == set(REPLICAS)
    for status, body, _ in results:
        if status == HTTPStatus.PRECONDITION_FAILED:
            assert body["code"] == "precondition_failed"
    (winner,) = [body for status, body, _ in results if status == HTTPStatus.OK]
    assert balancer.request("GET", detail, token=token)[1]["title"] == winner["title"]
