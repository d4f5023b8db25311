"""Per-user rate limit (API_USER_RATE): 429 JSON with Retry-After, counted in the real Redis on
127.0.0.1:6379 so that every process shares it, without Redis in a file every worker of a server
shares (API_USER_RATE_FILE), per process with neither, and never an outage because of the store.

"Redis unavailable" is a closed port on 127.0.0.1 rather than the machine's Redis stopped: other
engineers' tests share that Redis.
"""

import logging
import multiprocessing
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus

import pytest
from django.core.exceptions import ImproperlyConfigured

from tests.live_server import LiveServer, hs256_token
from tests.support.environment import REPO, clean_env
from tests.support.http import free_port
from todo_api.env import env_rate
from todo_api.throttling import FileCounter, UserRateThrottle, warn_if_per_process

REDIS_URL = "redis://127.0.0.1:6379/0"
# An hour's window: a test crossing its end (and so starting a fresh count) is all but impossible.
THREE_AN_HOUR = (3, 3600)


def redis_cache(url):
    return {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": url,
        "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.25},
    }


@pytest.fixture(autouse=True)
def redis_not_skipped():
    UserRateThrottle.redis_retry_at = 0.0
    yield
    UserRateThrottle.redis_retry_at = 0.0


@pytest.fixture
def shared_limit(settings):
    settings.API_USER_RATE = THREE_AN_HOUR
    settings.REDIS_URL = REDIS_URL
    settings.CACHES = {**settings.CACHES, "throttle": redis_cache(REDIS_URL)}


@pytest.fixture
def redis_unavailable(settings):
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings.API_USER_RATE = (1, 3600)
    settings.REDIS_URL = url
    settings.CACHES = {**settings.CACHES, "throttle": redis_cache(url)}


def test_a_user_over_the_rate_gets_a_429_json_error_with_retry_after(alice, shared_limit):
    statuses = [alice.get("/api/v1/tasks").status_code for _ in range(3)]

    response = alice.get("/api/v1/tasks")

    assert statuses == [HTTPStatus.OK] * 3
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= 3600
    assert response.json() == {
        "status": 429,
        "code": "throttled",
        "message": f"Request was throttled. Expected available in {retry_after} seconds.",
    }


def test_each_user_has_a_count_of_their_own(alice, bob, shared_limit):
    for _ in range(4):
        alice.get("/api/v1/tasks")

    assert alice.get("/api/v1/tasks").status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert bob.get("/api/v1/tasks").status_code == HTTPStatus.OK


def test_probes_and_anonymous_requests_are_not_counted(anonymous, settings):
    settings.API_USER_RATE = (1, 3600)

    statuses = {anonymous.get(path).status_code for path in ["/healthz", "/readyz"] * 3}

    assert statuses == {HTTPStatus.OK}


def test_without_a_rate_nobody_is_throttled(alice, settings):
    settings.API_USER_RATE = None

    assert {alice.get("/api/v1/tasks").status_code for _ in range(20)} == {HTTPStatus.OK}


def test_without_redis_the_limit_still_holds_within_the_process(alice, settings):
    settings.API_USER_RATE = (2, 3600)
    settings.REDIS_URL = None
    settings.API_USER_RATE_FILE = None

    statuses = [alice.get("/api/v1/tasks").status_code for _ in range(3)]

    assert statuses == [HTTPStatus.OK, HTTPStatus.OK, HTTPStatus.TOO_MANY_REQUESTS]


def test_with_redis_unavailable_requests_are_served_and_the_outage_logged_once(
    alice, redis_unavailable, caplog
):
    with caplog.at_level(logging.WARNING, logger="todo_api.throttling"):
        statuses = [alice.get("/api/v1/tasks").status_code for _ in range(3)]

    assert statuses == [HTTPStatus.OK] * 3
    warnings = [record.getMessage() for record in caplog.records if record.name == "todo_api.throttling"]
    assert len(warnings) == 1
    assert warnings[0].startswith(
        "Redis unavailable, requests are not throttled for 5 s: Error 111 connecting"
    )


def count_in_a_child(path, key, times):
    counter = FileCounter(path)
    for _ in range(times):
        counter.incr(key, 7)


def test_the_file_counter_loses_no_increment_between_processes(tmp_path):
    path = str(tmp_path / "rate.sqlite3")
    fork = multiprocessing.get_context("fork")
    children = [fork.Process(target=count_in_a_child, args=(path, "alice", 300)) for _ in range(4)]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=60)

    assert [child.exitcode for child in children] == [0] * 4
    assert FileCounter(path).incr("alice", 7) == 4 * 300 + 1


def test_the_file_counter_starts_each_window_at_one_and_forgets_old_ones(tmp_path):
    path = str(tmp_path / "rate.sqlite3")
    counter = FileCounter(path)
    counts = [counter.incr("alice", 1), counter.incr("alice", 1), counter.incr("bob", 1)]

    counts.append(counter.incr("alice", 2))

    assert counts == [1, 2, 1, 1]
    # bob's row of window 1 went when this process first counted in window 2.
    assert FileCounter(path).connection().execute("SELECT key FROM counts").fetchall() == [("alice",)]


def test_without_redis_the_limit_holds_through_the_file(alice, settings, tmp_path):
    settings.API_USER_RATE = (2, 3600)
    settings.REDIS_URL = None
    settings.API_USER_RATE_FILE = str(tmp_path / "rate.sqlite3")

    statuses = [alice.get("/api/v1/tasks").status_code for _ in range(3)]

    assert statuses == [HTTPStatus.OK, HTTPStatus.OK, HTTPStatus.TOO_MANY_REQUESTS]


def test_with_the_file_unusable_requests_are_served_and_that_logged_once(alice, settings, tmp_path, caplog):
    settings.API_USER_RATE = (1, 3600)
    settings.REDIS_URL = None
    settings.API_USER_RATE_FILE = str(tmp_path / "missing-directory" / "rate.sqlite3")

    with caplog.at_level(logging.WARNING, logger="todo_api.throttling"):
        statuses = [alice.get("/api/v1/tasks").status_code for _ in range(3)]

    assert statuses == [HTTPStatus.OK] * 3
    warnings = [record.getMessage() for record in caplog.records if record.name == "todo_api.throttling"]
    assert warnings == [
        "API_USER_RATE_FILE unavailable, requests are not throttled for 5 s: unable to open database file"
    ]


def test_a_rate_without_redis_is_announced_as_per_process(settings, caplog):
    settings.API_USER_RATE = (600, 60)
    settings.REDIS_URL = None
    settings.API_USER_RATE_FILE = None

    with caplog.at_level(logging.WARNING, logger="todo_api.throttling"):
        warn_if_per_process()

    assert "API_USER_RATE is set without REDIS_URL" in caplog.text


@pytest.mark.live
def test_the_per_process_warning_is_printed_when_the_app_starts():
    env = clean_env(
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="k" * 50,
        DJANGO_ALLOWED_HOSTS="localhost",
        API_USER_RATE="600/min",
    )
    env.pop("REDIS_URL", None)

    result = subprocess.run(
        [sys.executable, "-c", "import todo_api.wsgi"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert "API_USER_RATE is set without REDIS_URL" in result.stderr


@pytest.mark.live
def test_the_count_is_shared_by_every_worker_through_redis(tmp_path):
    server = LiveServer(
        tmp_path, workers=3, threads=1, extra_env={"REDIS_URL": REDIS_URL, "API_USER_RATE": "5/hour"}
    )
    try:
        token = hs256_token(f"alice-{tmp_path.name}-{free_port()}")
        # Each request on its own connection: the workers take turns accepting them.
        statuses = [server.request("GET", "/api/v1/tasks", token=token)[0] for _ in range(12)]
    finally:
        server.stop()

    assert statuses == [HTTPStatus.OK] * 5 + [HTTPStatus.TOO_MANY_REQUESTS] * 7


@pytest.mark.live
def test_without_redis_the_count_is_shared_by_the_workers_of_a_production_server(tmp_path):
    # gunicorn.conf.py names the file; 2 workers x 2 threads as deploy/k8s runs them. Preloaded, so
    # that both workers are serving as soon as the first answers.
    server = LiveServer(
        tmp_path,
        workers=2,
        threads=2,
        extra_env={"API_USER_RATE": "10/hour", "GUNICORN_CMD_ARGS": "--preload"},
    )
    try:
        token = hs256_token(f"alice-{tmp_path.name}-{free_port()}")
        # In parallel, each on its own connection: both workers accept some, and increments race.
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(
                pool.map(lambda _: server.request("GET", "/api/v1/tasks", token=token)[0], range(40))
            )
    finally:
        server.stop()

    assert sorted(statuses) == [HTTPStatus.OK] * 10 + [HTTPStatus.TOO_MANY_REQUESTS] * 30


@pytest.mark.parametrize(
    ("value", "rate"),
    [("600/min", (600, 60)), ("10/s", (10, 1)), (" 5 / hour ", (5, 3600)), ("1/day", (1, 86400))],
)
def test_a_rate_reads_as_a_count_per_period(monkeypatch, value, rate):
    monkeypatch.setenv("API_USER_RATE", value)

    assert env_rate("API_USER_RATE") == rate


@pytest.mark.parametrize("value", ["600", "600/fortnight", "0/min", "-1/min", "many/min", "/min"])
def test_a_bad_rate_stops_start_up_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv("API_USER_RATE", value)

    with pytest.raises(ImproperlyConfigured, match="API_USER_RATE must be a count per"):
        env_rate("API_USER_RATE")
