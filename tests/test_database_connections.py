"""Database connections: an idle one is checked before use, a busy one is not; timestamps load in C."""

import time
import uuid
from datetime import UTC, datetime

import psycopg
import pytest
from django.db import connection
from psycopg.pq import Format

from tasks.models import Task
from tests.live_server import POSTGRES_URL, LiveServer, hs256_token
from todo_api.database import FAST_TIMESTAMPTZ_LOADER, TIMESTAMPTZ_OID, UTCTimestamptzLoader


def drop_connections(database):
    """What Neon does to idle connections when its compute suspends."""
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(
            # The timeout (ms) makes it wait until each backend is gone, not just signalled.
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [database],
        )


@pytest.fixture
def one_connection_server(tmp_path):
    """One worker with one thread: every request reuses the same database connection."""
    server = LiveServer(tmp_path, workers=1, threads=1, extra_env={"DATABASE_HEALTH_CHECK_IDLE_SECONDS": "1"})
    yield server
    server.stop()


@pytest.mark.live
def test_a_connection_dropped_while_idle_is_replaced_before_any_request_fails(one_connection_server):
    server, token = one_connection_server, hs256_token(f"alice-{uuid.uuid4().hex[:8]}")
    assert server.request("GET", "/api/v1/tasks", token=token)[0] == 200

    drop_connections(server.database)
    time.sleep(1.5)  # idle past DATABASE_HEALTH_CHECK_IDLE_SECONDS: checked, found dead, replaced

    assert [server.request("GET", "/api/v1/tasks", token=token)[0] for _ in range(3)] == [200, 200, 200]


@pytest.mark.live
def test_requests_that_run_no_query_do_not_make_an_idle_connection_trusted(one_connection_server):
    # Liveness probes and cached-token requests keep the thread busy, not the connection.
    server, token = one_connection_server, hs256_token(f"carol-{uuid.uuid4().hex[:8]}")
    assert server.request("GET", "/api/v1/tasks", token=token)[0] == 200

    drop_connections(server.database)
    for _ in range(6):  # 1.8 s of probes: past DATABASE_HEALTH_CHECK_IDLE_SECONDS since the last query
        assert server.request("GET", "/healthz")[0] == 200
        time.sleep(0.3)

    assert server.request("GET", "/api/v1/tasks", token=token)[0] == 200


@pytest.mark.live
def test_a_connection_used_moments_ago_is_not_checked_so_its_loss_is_one_503(one_connection_server):
    # The price of skipping the check (docs/performance.md): a connection dropped within a second of
    # its last request fails the next one, as a 503 the client retries, and is replaced after it.
    server, token = one_connection_server, hs256_token(f"bob-{uuid.uuid4().hex[:8]}")
    assert server.request("GET", "/api/v1/tasks", token=token)[0] == 200

    drop_connections(server.database)
    status, body, headers = server.request("GET", "/api/v1/tasks", token=token)

    assert (status, body["code"], headers["Retry-After"]) == (503, "database_unavailable", "5")
    assert server.request("GET", "/api/v1/tasks", token=token)[0] == 200


def test_timestamps_load_with_psycopgs_own_loader_as_utc(db, django_user_model):
    if connection.vendor != "postgresql":
        pytest.skip("the loader is PostgreSQL's; SQLite's timestamps are text that Django parses")
    written = datetime(2026, 12, 1, 17, 0, 0, 123456, tzinfo=UTC)
    owner = django_user_model.objects.create(username="alice")
    task = Task.objects.create(owner=owner, title="Renew passport", due_at=written)

    read = Task.objects.values_list("due_at", flat=True).get(pk=task.pk)

    assert connection.connection.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT) is UTCTimestamptzLoader
    assert FAST_TIMESTAMPTZ_LOADER.__module__ == "psycopg_binary._psycopg"  # the C one
    assert read == written
    assert read.tzinfo is UTC
