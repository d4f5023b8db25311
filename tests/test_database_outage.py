"""While PostgreSQL is down the API answers 503 JSON with Retry-After, and it recovers without a restart.

The API runs under gunicorn (gunicorn.conf.py) against a PostgreSQL cluster this module creates,
stops and starts; the machine's shared server is never touched.
"""

import secrets
import subprocess
import sys
import time

import jwt
import pytest
from django.db import OperationalError
from django.test import Client

from tests.processes import REPO, Gunicorn, PostgresCluster, clean_env, free_port

pytestmark = pytest.mark.live

SECRET = secrets.token_urlsafe(32)
RECOVERY_SECONDS = 15


@pytest.fixture(scope="module")
def cluster():
    cluster = PostgresCluster()
    try:
        cluster.start()
        migrate = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=REPO,
            capture_output=True,
            text=True,
            env=clean_env(
                DATABASE_URL=cluster.url, DJANGO_SECRET_KEY="k" * 50, DJANGO_ALLOWED_HOSTS="127.0.0.1"
            ),
        )
        assert migrate.returncode == 0, migrate.stderr
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture(params=["persistent connections", "connection pool"])
def api(request, cluster, tmp_path):
    port = free_port()
    env = clean_env(
        DATABASE_URL=cluster.url,
        DJANGO_SECRET_KEY="k" * 50,
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        BETTER_AUTH_SECRET=SECRET,
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS="1",
        GUNICORN_THREADS="4",
    )
    if request.param == "connection pool":
        env.update(DATABASE_POOL="1", DATABASE_POOL_MAX_SIZE="4", DATABASE_POOL_TIMEOUT="2")
    server = Gunicorn.as_in_the_image(env=env, port=port, log_dir=tmp_path)
    yield server
    server.stop()


class DatabaseGone:
    """A middleware meeting the lost database, as the session middleware would with a session cookie."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        raise OperationalError("server closed the connection unexpectedly")


def bearer(sub):
    token = jwt.encode(
        {"sub": sub, "email": f"{sub}@example.com", "exp": int(time.time()) + 600}, SECRET, algorithm="HS256"
    )
    return {"Authorization": f"Bearer {token}"}


def assert_database_unavailable(response):
    assert response.status == 503, response
    assert response.headers["content-type"] == "application/json"
    assert response.headers["retry-after"] == "5"
    assert response.json() == {
        "status": 503,
        "code": "database_unavailable",
        "message": "The database is unavailable. Retry shortly.",
    }


def test_the_api_answers_503_json_while_the_database_is_down_and_recovers_by_itself(api, cluster):
    alice = bearer("alice-" + secrets.token_hex(4))
    assert api.get("/api/v1/tasks", **alice).status == 200, api.log()[-3000:]
    assert api.get("/readyz").status == 200

    cluster.stop()
    try:
        # More requests than threads, so every thread meets its own broken connection.
        for _ in range(6):
            assert_database_unavailable(api.get("/api/v1/tasks", **alice))
        # A first request provisions its user: authentication itself needs the database.
        assert_database_unavailable(api.get("/api/v1/me", **bearer("bob-" + secrets.token_hex(4))))
        ready = api.get("/readyz")
        assert ready.status == 503
        assert ready.headers["retry-after"] == "5"
        assert ready.json()["code"] == "database_unavailable"
        assert api.get("/healthz").status == 200
    finally:
        cluster.start()

    restarted = time.monotonic()
    while api.get("/api/v1/tasks", **alice).status != 200:
        assert time.monotonic() - restarted < RECOVERY_SECONDS, api.log()[-3000:]
        time.sleep(0.2)
    assert [api.get("/api/v1/tasks", **alice).status for _ in range(8)] == [200] * 8
    assert api.get("/api/v1/me", **bearer("carol-" + secrets.token_hex(4))).status == 200
    assert api.get("/readyz").status == 200


def test_a_database_error_raised_in_a_middleware_is_a_503_json_too(settings, db):
    settings.MIDDLEWARE = [settings.MIDDLEWARE[0], f"{__name__}.DatabaseGone", *settings.MIDDLEWARE[1:]]

    response = Client(raise_request_exception=False).get("/api/v1/tasks")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json() == {
        "status": 503,
        "code": "database_unavailable",
        "message": "The database is unavailable. Retry shortly.",
    }
