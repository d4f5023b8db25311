"""A real Prometheus (Debian's package) scrapes two gunicorn replicas of 2 workers each with the bearer
token: PromQL returns exactly the requests sent, summed over replicas and workers, a restarted worker
loses nothing, and 10,000 random paths add no series."""

import http.client
import json
import os
import secrets
import shutil
import signal
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.live_server import LiveServer, hs256_token
from tests.support.http import free_port
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.live

TOKEN = secrets.token_urlsafe(24)
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
DEADLINE_SECONDS = 60
BURST = 10_000


class Prometheus:
    def __init__(self, tmp_path, targets):
        (tmp_path / "token").write_text(TOKEN)
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
            "scrape_configs": [
                {
                    "job_name": "todo-api",
                    "authorization": {"type": "Bearer", "credentials_file": str(tmp_path / "token")},
                    "static_configs": [{"targets": targets}],
                }
            ],
        }
        (tmp_path / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
        self.port = free_port()
        argv = [
            PROMETHEUS,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        self.process = ServerProcess("prometheus", argv, cwd=tmp_path, env=dict(os.environ), log_dir=tmp_path)
        self.process.wait_until(self.ready, "get ready")

    def ready(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def query(self, promql):
        """{labels as a sorted tuple: value} of an instant query."""
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=10) as response:
            result = json.load(response)["data"]["result"]
        return {tuple(sorted(item["metric"].items())): float(item["value"][1]) for item in result}

    def scalar(self, promql):
        values = list(self.query(promql).values())
        return values[0] if values else None

    def wait_for(self, promql, expected):
        """Polls until the query answers `expected`; fails with the last answer at the deadline."""
        deadline = time.monotonic() + DEADLINE_SECONDS
        while True:
            answer = self.query(promql)
            if answer == expected or time.monotonic() > deadline:
                return answer
            time.sleep(0.5)

    def stop(self):
        self.process.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("metrics-live")
    replicas = []
    try:
        for index in range(2):
            replicas.append(
                LiveServer(
                    tmp,
                    workers=2,
                    threads=2,
                    extra_env={
                        "METRICS_TOKEN": TOKEN,
                        "PROMETHEUS_MULTIPROC_DIR": str(tmp / f"multiproc-{index}"),
                        "APP_VERSION": "9.9.9",
                    },
                )
            )
        prometheus = Prometheus(tmp, [f"127.0.0.1:{replica.port}" for replica in replicas])
        yield replicas, prometheus
        prometheus.stop()
    finally:
        for replica in replicas:
            replica.stop()


def worker_pids(replica):
    children = Path(f"/proc/{replica.process.pid}/task/{replica.process.pid}/children").read_text()
    return [int(pid) for pid in children.split()]


def send_burst(replica, paths):
    connection = http.client.HTTPConnection("127.0.0.1", replica.port, timeout=30)
    for path in paths:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        assert response.status == 404, path
    connection.close()


def routes(answer):
    return {dict(labels)["route"]: value for labels, value in answer.items()}


def test_prometheus_sums_the_replicas_and_workers_exactly(cluster):
    replicas, prometheus = cluster
    expected = {}

    def count(method, route, status, times=1):
        key = (("method", method), ("route", route), ("status", str(status)))
        expected[key] = expected.get(key, 0) + times

    for index, replica in enumerate(replicas):
        token = hs256_token(f"metrics-user-{index}")
        for _ in range(3 + index):
            assert replica.request("GET", "/healthz")[0] == 200
        count("GET", "/healthz", 200, 3 + index)
        for _ in range(4):
            assert replica.request("GET", "/api/v1/me", token=token)[0] == 200
        count("GET", "/api/v1/me", 200, 4)
        for number in range(2):
            status, task, _ = replica.request(
                "POST", "/api/v1/tasks", token=token, body={"title": f"T{number}"}
            )
            assert status == 201
            assert replica.request("GET", f"/api/v1/tasks/{task['id']}", token=token)[0] == 200
        count("POST", "/api/v1/tasks", 201, 2)
        count("GET", "/api/v1/tasks/{id}", 200, 2)
        for missing in range(3):
            assert replica.request("GET", f"/api/v1/tasks/{900000 + missing}", token=token)[0] == 404
        count("GET", "/api/v1/tasks/{id}", 404, 3)
        for _ in range(5):
            assert replica.request("GET", "/api/v1/tasks")[0] == 401
        count("GET", "/api/v1/tasks", 401, 5)

    # A worker that stops and is replaced keeps what it counted.
    first_worker = worker_pids(replicas[0])[0]
    os.kill(first_worker, signal.SIGTERM)
    deadline = time.monotonic() + DEADLINE_SECONDS
    while first_worker in worker_pids(replicas[0]) or len(worker_pids(replicas[0])) < 2:
        assert time.monotonic() < deadline, "gunicorn did not replace the worker"
        time.sleep(0.2)

    ours = 'route!~"/readyz|unmatched"'  # LiveServer polls /readyz while it starts
    answer = prometheus.wait_for(
        f'sum by (method, route, status) (todo_api_http_requests_total{{job="todo-api",{ours}}})',
        {key: float(value) for key, value in expected.items()},
    )
    assert answer == {key: float(value) for key, value in expected.items()}

    # The error and latency series moved with them.
    assert prometheus.scalar('sum(todo_api_auth_failures_total{reason="missing"})') == 10
    assert prometheus.scalar('sum(todo_api_http_request_duration_seconds_count{route="/api/v1/me"})') == 8
    assert prometheus.scalar('sum(todo_api_http_request_duration_seconds_sum{route="/api/v1/me"})') > 0
    p95 = prometheus.scalar(
        "histogram_quantile(0.95, sum by (le) (todo_api_http_request_duration_seconds_bucket"
        '{route="/api/v1/tasks/{id}"}))'
    )
    assert 0 < p95 <= 5
    # Each of the 11 requests with a token per replica looked it up once.
    lookups = "sum(todo_api_token_cache_hits_total) + sum(todo_api_token_cache_misses_total)"
    assert prometheus.scalar(lookups) == 22
    # One build per replica: "max" over its workers.
    assert prometheus.query("todo_api_build_info") and all(
        dict(labels)["version"] == "9.9.9" and value == 1
        for labels, value in prometheus.query("todo_api_build_info").items()
    )
    assert prometheus.scalar('count(up{job="todo-api"} == 1)') == 2


def test_ten_thousand_random_paths_add_no_series(cluster):
    replicas, prometheus = cluster
    for replica in replicas:  # the "unmatched" series exist before the baseline
        send_burst(replica, ["/no-such-path"])
    prometheus.wait_for('sum(todo_api_http_requests_total{route="unmatched"})', {(): 2.0})
    before = prometheus.scalar('count({job="todo-api"})')

    paths = [
        f"/api/{secrets.token_hex(4)}/{secrets.token_hex(6)}/{secrets.token_hex(3)}"
        if number % 2
        else f"/{secrets.token_hex(8)}/{number}"
        for number in range(BURST)
    ]
    threads = [
        threading.Thread(target=send_burst, args=(replicas[part % 2], paths[part::4])) for part in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    counted = prometheus.wait_for('sum(todo_api_http_requests_total{route="unmatched"})', {(): BURST + 2.0})
    assert counted == {(): BURST + 2.0}
    assert prometheus.scalar('count({job="todo-api"})') == before
    labels = prometheus.query('count by (route) (todo_api_http_requests_total{job="todo-api"})')
    assert set(routes(labels)) == {
        "/healthz",
        "/readyz",
        "/api/v1/me",
        "/api/v1/tasks",
        "/api/v1/tasks/{id}",
        "unmatched",
    }
