"""Slow and idle clients: gunicorn bare gives way to a few, the nginx front (deploy/nginx/) holds hundreds.

gthread reads a request in one of its threads (2 workers x 2 threads as production starts it), so a
client that sends its headers slowly, or nothing at all, holds that thread. nginx holds such clients
itself and hands gunicorn only complete requests (docs/deploy.md, "The front").
"""

import contextlib
import json
import math
import os
import selectors
import shutil
import socket
import string
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from pathlib import Path

import pytest

from authbridge.verifier import MAX_TOKEN_LENGTH
from tests.live_server import LiveServer, hs256_token
from tests.support import http
from tests.support.http import LOOPBACK, free_port
from tests.support.servers import REPO, ServerProcess
from todo_api.edge import LIMIT_REQUEST_FIELD_SIZE, LIMIT_REQUEST_FIELDS, LIMIT_REQUEST_LINE

pytestmark = pytest.mark.live

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
TEMPLATE = REPO / "deploy/nginx/templates/default.conf.template"
TASKS = "/api/v1/tasks"
# The attack: from one client, connections that send a header line every 2 s and connections
# that send nothing, for 30 s, while another client's requests must keep a p95 under 100 ms.
SLOW, IDLE, LINE_EVERY_S, ATTACK_S, P95_LIMIT_S = 200, 200, 2.0, 30.0, 0.100

# The test's nginx.conf: as deploy/nginx/nginx.conf, with its files in a temporary directory.
MAIN_CONFIG = """\
{user}
worker_processes 2;
pid {run_dir}/nginx.pid;
error_log stderr warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    client_body_temp_path {run_dir}/client_body;
    proxy_temp_path {run_dir}/proxy;
    fastcgi_temp_path {run_dir}/fastcgi;
    uwsgi_temp_path {run_dir}/uwsgi;
    scgi_temp_path {run_dir}/scgi;
    include {run_dir}/default.conf;
}}
"""


class Nginx:
    """nginx with the product's site template, rendered as the nginx image renders it."""

    def __init__(self, upstream_port, run_dir, *, ready_status=HTTPStatus.OK):
        self.port = free_port()
        run_dir = Path(run_dir)
        site = string.Template(TEMPLATE.read_text()).safe_substitute(
            NGINX_PORT=f"{LOOPBACK}:{self.port}", API_UPSTREAM=f"{LOOPBACK}:{upstream_port}"
        )
        assert "${" not in site, "a placeholder of the template is not rendered"
        (run_dir / "default.conf").write_text(site)
        # As root, nginx's workers would run as nobody, who cannot enter pytest's temporary directory.
        user = "user root;" if os.geteuid() == 0 else ""
        (run_dir / "nginx.conf").write_text(MAIN_CONFIG.format(user=user, run_dir=run_dir))
        argv = [NGINX, "-e", "stderr", "-p", str(run_dir), "-c", str(run_dir / "nginx.conf")]
        self.server = ServerProcess(
            "nginx", [*argv, "-g", "daemon off;"], cwd=run_dir, env={}, log_dir=run_dir
        )
        self.server.wait_until(lambda: self.get("/healthz").status == ready_status, "answer /healthz")

    def get(self, path, **options):
        return http.request("GET", f"http://{LOOPBACK}:{self.port}{path}", **options)

    def raw(self, data, timeout=10):
        """(status, body) of raw bytes sent on one connection, read until the response is complete.

        Not until nginx closes: after a 413 it reads on a while, for the body the client announced.
        """
        with socket.create_connection((LOOPBACK, self.port), timeout=timeout) as connection:
            with contextlib.suppress(OSError):  # nginx may answer and close before taking everything
                connection.sendall(data)
            received = b""
            while b"\r\n\r\n" not in received or len(received.partition(b"\r\n\r\n")[2]) < length(received):
                chunk = connection.recv(65536)
                if not chunk:
                    break
                received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        return int(head.split()[1]), body

    def stop(self):
        self.server.stop()


def length(response):
    """The Content-Length of a response whose head is in `response`."""
    head = response.partition(b"\r\n\r\n")[0].decode("latin-1").lower()
    return int(head.split("content-length:")[1].split()[0])


class SlowClients:
    """One client's slow connections (a request line, then a header line every LINE_EVERY_S, never
    the end of the headers) and idle ones (nothing sent). A connection the server closes is opened
    again at once, as an attacker would, so the count holds for the whole attack."""

    def __init__(self, port, *, slow, idle):
        self.port = port
        self.selector = selectors.DefaultSelector()
        self.reopened = 0
        self._stopping = threading.Event()
        start = time.monotonic()
        for n in range(slow + idle):
            # The slow ones' lines spread over the interval, not sent in bursts.
            self._open("slow" if n < slow else "idle", start + LINE_EVERY_S * n / max(slow, 1))
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def open_connections(self):
        return len(self.selector.get_map())

    def _open(self, kind, next_line_at):
        connection = socket.create_connection((LOOPBACK, self.port), timeout=5)
        connection.setblocking(False)
        if kind == "slow":
            connection.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        self.selector.register(connection, selectors.EVENT_READ, {"kind": kind, "next": next_line_at})

    def _run(self):
        while not self._stopping.is_set():
            now = time.monotonic()
            # Readable means the server answered or closed: either way that connection is done.
            for key, _ in self.selector.select(timeout=0.05):
                self._reopen(key, now)
            for key in list(self.selector.get_map().values()):
                if key.data["kind"] == "slow" and key.data["next"] <= now:
                    key.data["next"] = now + LINE_EVERY_S
                    try:
                        key.fileobj.send(b"X-Slow: still coming\r\n")
                    except OSError:
                        self._reopen(key, now)

    def _reopen(self, key, now):
        self.selector.unregister(key.fileobj)
        key.fileobj.close()
        self.reopened += 1
        self._open(key.data["kind"], now + LINE_EVERY_S)

    def close(self):
        self._stopping.set()
        self._thread.join(timeout=10)
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()
        self.selector.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory):
    # gunicorn.conf.py's defaults on this 2-CPU machine: 2 workers x 2 threads.
    live = LiveServer(tmp_path_factory.mktemp("slow-clients"), workers=2, threads=2)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def front(gunicorn, tmp_path_factory):
    nginx = Nginx(gunicorn.port, tmp_path_factory.mktemp("nginx"))
    yield nginx
    nginx.stop()


@pytest.fixture(scope="module")
def alice_token(gunicorn):
    token = hs256_token("alice")
    assert gunicorn.request("GET", "/api/v1/me", token=token)[0] == HTTPStatus.OK
    return token


def p95(latencies):
    ordered = sorted(latencies)
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


def test_bare_gunicorn_is_taken_down_by_a_few_slow_clients(gunicorn):
    # 16 slow connections hold all 4 threads, or at least one worker's two: which worker accepts a
    # connection is the kernel's choice, so of 8 probes some may still land on a worker with a free thread.
    with SlowClients(gunicorn.port, slow=16, idle=0), ThreadPoolExecutor(8) as probes:
        time.sleep(1)
        statuses = list(probes.map(lambda _: gunicorn.request("GET", "/healthz", timeout=2)[0], range(8)))

    print(f"\nbare gunicorn under 16 slow connections: /healthz probes {statuses} (None: no answer in 2 s)")
    assert None in statuses, "gunicorn answered every /healthz while slow clients held its threads"
    # Once they leave, it answers again.
    assert gunicorn.request("GET", "/healthz", timeout=5)[0] == HTTPStatus.OK


def test_the_front_keeps_the_api_fast_under_hundreds_of_slow_and_idle_connections(front, alice_token):
    latencies, failures = [], []
    with SlowClients(front.port, slow=SLOW, idle=IDLE) as attacker:
        time.sleep(1)  # every slow connection has sent a line or more
        held_at_start = attacker.open_connections
        deadline = time.monotonic() + ATTACK_S
        while time.monotonic() < deadline:
            for path, token in (("/healthz", None), (TASKS, alice_token)):
                started = time.perf_counter()
                try:
                    status = front.get(path, token=token, timeout=5).status
                except OSError as error:
                    status = repr(error)
                latencies.append(time.perf_counter() - started)
                if status != HTTPStatus.OK:
                    failures.append((path, status))
            time.sleep(0.02)
        held_at_end, reopened = attacker.open_connections, attacker.reopened

    print(
        f"\nthrough nginx, under {SLOW} slow + {IDLE} idle connections for {ATTACK_S:.0f} s: "
        f"{len(latencies)} requests, {len(failures)} failed, p95 {p95(latencies) * 1000:.1f} ms, "
        f"max {max(latencies) * 1000:.1f} ms; the attacker reopened {reopened} connections nginx closed"
    )
    assert held_at_start == held_at_end == SLOW + IDLE
    assert failures == []
    assert p95(latencies) < P95_LIMIT_S


def assert_json_error(status, body, expected_status, code):
    assert status == expected_status
    error = json.loads(body)
    assert error["status"] == expected_status
    assert error["code"] == code
    return error


class TestTheFrontsLimitsMatchTheServers:
    """What gunicorn and Django accept passes nginx; what they refuse, nginx refuses in the same JSON."""

    def request(self, target="/healthz", headers=(), method="GET"):
        lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", *headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def test_a_bearer_token_of_the_verifiers_maximum_length_reaches_the_api(self, front):
        # Not a valid token, but the API (not nginx) refuses it: the header got through.
        response = front.get("/api/v1/me", headers={"Authorization": f"Bearer {'e' * MAX_TOKEN_LENGTH}"})

        assert response.status == HTTPStatus.UNAUTHORIZED
        assert response.json()["code"] != "request_header_fields_too_large"

    def test_a_header_field_over_the_buffer_is_a_json_431(self, front):
        header = f"X-Huge: {'y' * (LIMIT_REQUEST_FIELD_SIZE + 100)}"

        assert_json_error(
            *front.raw(self.request(headers=[header])),
            HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request_header_fields_too_large",
        )

    def test_too_many_header_fields_are_gunicorns_json_431(self, front):
        headers = [f"X-Flood-{n}: y" for n in range(LIMIT_REQUEST_FIELDS + 1)]

        assert_json_error(
            *front.raw(self.request(headers=headers)),
            HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request_header_fields_too_large",
        )

    def test_a_request_line_over_gunicorns_limit_is_a_json_414(self, front):
        target = "/healthz?pad=" + "x" * LIMIT_REQUEST_LINE

        error = assert_json_error(
            *front.raw(self.request(target)), HTTPStatus.REQUEST_URI_TOO_LONG, "uri_too_long"
        )

        assert error["message"] == f"The request line is over {LIMIT_REQUEST_LINE} bytes."

    def test_a_body_over_the_limit_is_a_json_413_before_it_is_sent(self, front):
        data = self.request(TASKS, ["Content-Type: application/json", "Content-Length: 65537"], "POST")

        error = assert_json_error(*front.raw(data), HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "payload_too_large")

        assert error["message"] == "The request body is over 65536 bytes."

    def test_a_malformed_request_is_a_json_400(self, front):
        error = assert_json_error(*front.raw(b"GARBAGE\r\n\r\n"), HTTPStatus.BAD_REQUEST, "bad_request")

        assert error["message"] == "The request is not valid HTTP/1.1."

    def test_an_unreachable_server_is_a_json_502(self, tmp_path):
        nginx = Nginx(free_port(), tmp_path, ready_status=HTTPStatus.BAD_GATEWAY)  # nothing listens there
        try:
            response = nginx.get("/api/v1/me")
        finally:
            nginx.stop()

        assert response.status == HTTPStatus.BAD_GATEWAY
        assert response.json()["code"] == "bad_gateway"
