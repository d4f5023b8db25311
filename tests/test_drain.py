"""Graceful drain under gunicorn: from SIGTERM on, /readyz is 503 while the worker still serves."""

import signal
import socket
import time
from http import HTTPStatus

import pytest
from rest_framework.test import APIClient

from tests.live_server import LiveServer
from todo_api import drain

pytestmark = pytest.mark.live

DRAIN_SECONDS = 3


@pytest.fixture
def draining_process():
    drain.start_draining()
    yield
    drain._draining.clear()


def test_readyz_is_503_once_draining_has_started(db, draining_process):
    response = APIClient().get("/readyz")

    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json() == {"status": 503, "code": "draining", "message": "This server is shutting down."}


def test_healthz_stays_ok_while_draining(db, draining_process):
    assert APIClient().get("/healthz").status_code == HTTPStatus.OK


def test_a_sigtermed_gunicorn_serves_with_readyz_503_for_the_drain_delay_then_exits_cleanly(tmp_path):
    server = LiveServer(
        tmp_path, workers=2, threads=2, extra_env={"GUNICORN_DRAIN_SECONDS": str(DRAIN_SECONDS)}
    )
    try:
        assert server.request("GET", "/readyz")[0] == HTTPStatus.OK
        started = time.monotonic()

        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        readyz = [server.request("GET", "/readyz", timeout=5) for _ in range(4)]
        healthz = server.request("GET", "/healthz", timeout=5)
        exit_status = server.process.wait(timeout=DRAIN_SECONDS + 10)

        assert time.monotonic() - started >= DRAIN_SECONDS
        assert [(status, body) for status, body, _ in readyz] == [
            (
                HTTPStatus.SERVICE_UNAVAILABLE,
                {"status": 503, "code": "draining", "message": "This server is shutting down."},
            )
        ] * 4
        assert healthz[0] == HTTPStatus.OK
        assert exit_status == 0
        assert server.request("GET", "/healthz", timeout=2)[0] is None  # nothing listens any more
    finally:
        server.stop()


def test_a_drain_delay_as_long_as_the_graceful_timeout_stops_gunicorn_at_start(tmp_path):
    with pytest.raises(
        RuntimeError, match="GUNICORN_DRAIN_SECONDS must be less than GUNICORN_GRACEFUL_TIMEOUT"
    ):
        LiveServer(tmp_path, extra_env={"GUNICORN_DRAIN_SECONDS": "8", "GUNICORN_GRACEFUL_TIMEOUT": "8"})


def read_response(connection):
    """One whole response (head and Content-Length body), however the packets split it."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += connection.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(
        next(
            line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
        )
    )
    while len(body) < length:
        body += connection.recv(65536)
    return received


def test_a_kept_alive_connection_is_served_during_the_drain_then_closed_cleanly(tmp_path):
    server = LiveServer(tmp_path, workers=1, threads=2, extra_env={"GUNICORN_DRAIN_SECONDS": "1"})
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
            connection.sendall(request)
            before = read_response(connection)
            server.process.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            connection.sendall(request)
            during = read_response(connection)
            exit_status = server.process.wait(timeout=15)
            after = connection.recv(65536)  # a reset would raise ConnectionResetError here
    finally:
        server.stop()

    assert before.startswith(b"HTTP/1.1 200")
    assert during.startswith(b"HTTP/1.1 200")
    assert exit_status == 0
    assert after == b""  # an orderly close (FIN): nothing lost, nothing cut
