"""A recurring occurrence completed at once through every replica gets one successor (issue 23)."""

import uuid
from datetime import UTC, datetime, timedelta
from http import HTTPStatus

import pytest

from tests.live_server import hs256_token
from tests.replicas.cluster import REPLICAS
from tests.support.api import iso
from tests.support.parallel import PARALLEL, in_parallel

pytestmark = pytest.mark.live


def test_sixteen_clients_completing_one_occurrence_over_every_replica_create_one_successor(balancer):
    sub = f"recurring-{uuid.uuid4().hex}"
    tokens = [hs256_token(sub, name="Recurring", jti=str(n)) for n in range(PARALLEL)]
    due_at = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=2)
    body = {"title": "Standup", "recurrence": "FREQ=DAILY", "due_at": iso(due_at)}
    status, task, _ = balancer.request("POST", "/api/v1/tasks", token=tokens[0], body=body)
    assert status == HTTPStatus.CREATED, task
    detail = f"/api/v1/tasks/{task['id']}"

    results = in_parallel(
        [
            lambda token=token: balancer.request("PATCH", detail, token=token, body={"completed": True})
            for token in tokens
        ]
    )

    assert [status for status, _, _ in results] == [HTTPStatus.OK] * PARALLEL
    assert {headers["x-served-by"] for _, _, headers in results} == set(REPLICAS)
    stored = balancer.query(
        "SELECT task.id, task.due_at FROM tasks_task task JOIN authbridge_user owner "
        "ON owner.id = task.owner_id WHERE owner.sub = %s ORDER BY task.id",
        [sub],
    )
    assert [due for _, due in stored] == [due_at, due_at + timedelta(days=1)]
    successor_id = stored[1][0]
    assert {body["next_occurrence"] for _, body, _ in results} == {successor_id}
    assert balancer.query(
        "SELECT action, count(*) FROM tasks_change WHERE task_id = %s GROUP BY action ORDER BY action",
        [task["id"]],
    ) == [("completed", 1), ("created", 1), ("updated", PARALLEL - 1)]
