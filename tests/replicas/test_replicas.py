"""Three replicas behind HAProxy: stateless enough to spread any request anywhere, and restartable one by
one under load without a failed request."""

import json
import os
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.live_server import hs256_token
from tests.replicas.cluster import REPLICAS, SERVER_MAXCONN
from tests.replicas.load import Load
from tests.test_isolation_property import USERS, IsolationMachine

pytestmark = pytest.mark.live

LOAD_USERS = 200


class Response:
    def __init__(self, status, body):
        self.status_code, self.body = status, body

    def json(self):
        return self.body

    @property
    def content(self):
        return json.dumps(self.body)


class BalancerClient:
    """The few calls of Django's test client that IsolationMachine makes, sent through the balancer."""

    def __init__(self, cluster, token):
        self.cluster, self.token = cluster, token

    def generic(self, method, path, data=None, content_type=None):
        body = json.loads(data) if data is not None else None
        status, payload, _ = self.cluster.request(method, path, token=self.token, body=body)
        return Response(status, payload)

    def get(self, path, params=None):
        return self.generic("GET", f"{path}?{urlencode(params)}" if params else path)

    def patch(self, path):
        return self.generic("PATCH", path)

    def delete(self, path):
        return self.generic("DELETE", path)


def new_users(cluster, names):
    """(clients, subs) of brand-new users: they own no task yet."""
    subs = {name: f"{name}-{uuid.uuid4().hex}" for name in names}
    clients = {name: BalancerClient(cluster, hs256_token(subs[name], name=name.title())) for name in names}
    return clients, subs


def report(capsys, line):
    """Shown in the test run's output, not only when the test fails."""
    with capsys.disabled():
        print(f"\n{line}")


def test_no_sequence_of_operations_spread_over_replicas_lets_a_user_see_anothers_tasks(balancer):
    run_state_machine_as_test(
        lambda: IsolationMachine(*new_users(balancer, USERS)),
        settings=settings(
            max_examples=8,
            stateful_step_count=15,
            deadline=None,
            database=None,
            derandomize=bool(os.environ.get("CI")),
            suppress_health_check=list(HealthCheck),
        ),
    )


def test_requests_are_spread_round_robin_over_every_replica(balancer):
    token = hs256_token(f"alice-{uuid.uuid4().hex}")

    served_by = Counter(
        balancer.request("GET", "/api/v1/me", token=token)[2]["x-served-by"] for _ in range(9)
    )

    assert served_by == dict.fromkeys(REPLICAS, 3)


def test_a_new_users_first_requests_on_every_replica_at_once_create_one_user(balancer):
    sub = f"newcomer-{uuid.uuid4().hex}"
    tokens = [hs256_token(sub, email=f"{sub}@example.com", name="Newcomer", jti=str(n)) for n in range(12)]

    with ThreadPoolExecutor(max_workers=len(tokens)) as pool:
        results = list(pool.map(lambda token: balancer.request("GET", "/api/v1/me", token=token), tokens))

    assert [status for status, _, _ in results] == [HTTPStatus.OK] * len(tokens)
    assert {body["id"] for _, body, _ in results} == {sub}
    assert {headers["x-served-by"] for _, _, headers in results} == set(REPLICAS)
    assert balancer.query("SELECT count(*) FROM authbridge_user WHERE sub = %s", [sub]) == [(1,)]


def load_tokens(count):
    return [hs256_token(f"load-{uuid.uuid4().hex}") for _ in range(count)]


def assert_every_created_task_is_readable(balancer, created):
    ids = [task_id for _, task_id in created]
    stored = balancer.query("SELECT id FROM tasks_task WHERE id = ANY(%s)", [ids])
    assert {task_id for (task_id,) in stored} == set(ids)
    for token, task_id in created[:: max(1, len(created) // 50)]:  # and some through the API
        assert balancer.request("GET", f"/api/v1/tasks/{task_id}", token=token)[0] == HTTPStatus.OK


def test_a_rolling_restart_under_load_fails_no_request_and_loses_no_write(balancer, capsys):
    load = Load(balancer.port, load_tokens(LOAD_USERS), seconds=40)
    time.sleep(3)
    restarted = []
    for name in REPLICAS:
        assert balancer.replicas[name].terminate() == 0
        balancer.restart(name)
        restarted.append(name)
    result = load.wait()
    report(
        capsys,
        f"rolling restart: {result.requests} requests, {dict(result.statuses)}, by {dict(result.served_by)}",
    )

    assert restarted == list(REPLICAS)
    assert result.failures == []
    assert set(result.statuses) == {HTTPStatus.CREATED, HTTPStatus.OK}
    assert set(result.served_by) == set(REPLICAS)
    assert result.created
    assert_every_created_task_is_readable(balancer, result.created)


def test_a_replica_killed_mid_load_fails_at_most_the_requests_in_flight_on_it(balancer, capsys):
    load = Load(balancer.port, load_tokens(LOAD_USERS // 2), seconds=12)
    time.sleep(4)
    balancer.replicas["r2"].kill()
    balancer.haproxy.wait_for("r2", "DOWN")
    result = load.wait()
    balancer.restart("r2")
    report(
        capsys,
        f"SIGKILL of r2 mid-load: {len(result.failures)} failed requests of {result.requests} (at most "
        f"{SERVER_MAXCONN} in flight on a replica at once): {Counter(what for what, _ in result.failures)}",
    )

    # HAProxy never has more than SERVER_MAXCONN requests on one replica: those it was serving, and at
    # most as many again sent in the moment before the first failure took it out of rotation (its
    # dying socket still completes connections). Refused connections are retried elsewhere.
    assert len(result.failures) <= 2 * SERVER_MAXCONN
    # A request that died with the replica: a 502, or on a kept-alive connection, HAProxy closes it
    # unanswered as the replica did (a client may retry an idempotent request on a new connection).
    assert {what for what, _ in result.failures} <= {HTTPStatus.BAD_GATEWAY, "connection"}
    assert result.statuses[HTTPStatus.CREATED] > 0
    # What was acknowledged survives, including on the killed replica.
    assert_every_created_task_is_readable(balancer, result.created)
