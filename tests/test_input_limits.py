"""Oversized and hostile input: big bodies, chunked bodies, deep JSON, long query strings, header floods.

Each is a JSON 4xx, promptly, never a 500 or a hang, under gunicorn started with gunicorn.conf.py
on PostgreSQL: the production setup, where the server's own limits and the way bytes arrive matter.
"""

import json
import socket
import time
from http import HTTPStatus

import pytest

from tests.live_server import LiveServer, hs256_token
from todo_api.edge import MAX_QUERY_STRING_BYTES

pytestmark = pytest.mark.live

TASKS = "/api/v1/tasks"
# Prompt: the server answers without waiting for bytes that will never come.
PROMPT_SECONDS = 5


class TestTheApplicationsLimits:
    """Refusals Django makes, seen through gunicorn as a client sees them."""

    def test_a_body_over_the_limit_is_413_before_it_is_parsed(self, server, token, settings):
        status, body = post(server, token, json.dumps({"title": "x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE}))
        assert status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
        assert body == {
            "status": 413,
            "code": "payload_too_large",
            "message": f"The request body is over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.",
        }

    # As deep as fits in the body limit.
    @pytest.mark.parametrize(
        "opener,closer,depth", [("[", "]", 20_000), ('{"a":', "}", 10_000)], ids=["arrays", "objects"]
    )
    def test_deeply_nested_json_is_400(self, server, token, opener, closer, depth):
        status, body = post(server, token, opener * depth + closer * depth)
        assert status == HTTPStatus.BAD_REQUEST
        assert body["code"] == "parse_error"

    def test_a_title_nested_deeply_is_400(self, server, token):
        status, _ = post(server, token, '{"title":' + "[" * 5000 + "]" * 5000 + "}")
        assert status == HTTPStatus.BAD_REQUEST

    def test_a_lone_surrogate_in_a_title_is_400(self, server, token):
        status, _ = post(server, token, '{"title": "\\ud800 half a character"}')
        assert status == HTTPStatus.BAD_REQUEST

    def test_a_4_kb_query_string_of_many_parameters_is_harmless(self, server, token):
        query = "&".join(f"p{n}=v" for n in range(1000))[:MAX_QUERY_STRING_BYTES]
        assert server.request("GET", f"{TASKS}?{query}", token=token)[0] == HTTPStatus.OK

    def test_a_100_kb_query_string_of_many_parameters_is_414(self, server, token):
        status, body = send(server, "GET", f"{TASKS}?" + "&".join(f"p{n}=v" for n in range(15_000)), token)
        assert status == HTTPStatus.REQUEST_URI_TOO_LONG
        assert body["code"] == "uri_too_long"

    @pytest.mark.parametrize("length", ["12abc", "-5", "1e3"])
    def test_a_content_length_that_is_not_a_number_is_400(self, server, token, length):
        status, body = send(server, "POST", TASKS, token, b"{}", headers=[f"Content-Length: {length}"])
        assert status == HTTPStatus.BAD_REQUEST
        assert body["code"] == "bad_request"

    def test_a_chunked_body_is_411(self, server, token):
        data = b'{"title": "x"}'
        status, body = send(
            server, "POST", TASKS, token, chunked(data), headers=["Transfer-Encoding: chunked"]
        )
        assert status == HTTPStatus.LENGTH_REQUIRED
        assert body == {
            "status": 411,
            "code": "length_required",
            "message": "The request body must come with a Content-Length.",
        }


def send(server, method, target, token, body=b"", headers=None):
    """(status, JSON body) of raw bytes: for what http.client would correct or refuse to send."""
    if headers is None:
        headers = [f"Content-Length: {len(body)}"]
    head = request_head(
        method,
        target,
        {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Connection": "close",
            **dict(header.split(": ", 1) for header in headers),
        },
    )
    status, response_headers, response_body = server.raw(
        head + (b"".join(body) if isinstance(body, list) else body)
    )
    assert response_headers["content-type"] == "application/json", response_body
    return status, json.loads(response_body)


def post(server, token, text):
    return send(server, "POST", TASKS, token, text.encode())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(tmp_path_factory.mktemp("input-limits"), workers=1, threads=4)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def token(server):
    token = hs256_token("limits-user")
    assert server.request("GET", "/api/v1/me", token=token)[0] == HTTPStatus.OK
    return token


def exchange(server, head, body_parts=(), pause=0.0):
    """Sends raw bytes and returns (status, seconds until the status line arrived), closing after."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=PROMPT_SECONDS) as connection:
        try:
            connection.sendall(head)
            for part in body_parts:
                time.sleep(pause)
                connection.sendall(part)
        except OSError:
            pass  # the server may answer and close before taking everything we send
        received = b""
        try:
            while b"\r\n" not in received:
                chunk = connection.recv(4096)
                if not chunk:
                    break
                received += chunk
        except TimeoutError:
            return None, time.monotonic() - started
    status_line = received.split(b"\r\n", 1)[0]
    status = int(status_line.split()[1]) if status_line.startswith(b"HTTP/1.") else None
    return status, time.monotonic() - started


def request_head(method, path, headers):
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunked(data, size=8192):
    parts = [
        b"%x\r\n%s\r\n" % (len(data[i : i + size]), data[i : i + size]) for i in range(0, len(data), size)
    ]
    return [*parts, b"0\r\n\r\n"]


class TestUnderGunicorn:
    def test_a_declared_50_mb_body_is_413_without_waiting_for_it(self, server, token):
        head = request_head(
            "POST",
            TASKS,
            {
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Content-Length": str(50 * 1024 * 1024),
            },
        )
        status, seconds = exchange(server, head, [b'{"title": "'])
        assert status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
        assert seconds < PROMPT_SECONDS

    def test_a_chunked_body_over_the_limit_is_refused_without_reading_it_all(self, server, token):
        head = request_head(
            "POST",
            TASKS,
            {
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Transfer-Encoding": "chunked",
            },
        )
        body = json.dumps({"title": "big", "description": "x" * 200_000}).encode()
        status, seconds = exchange(server, head, chunked(body))
        assert status == HTTPStatus.LENGTH_REQUIRED
        assert seconds < PROMPT_SECONDS

    def test_an_endless_chunked_body_is_refused_promptly(self, server, token):
        head = request_head(
            "PATCH",
            f"{TASKS}/1",
            {
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Transfer-Encoding": "chunked",
            },
        )
        status, seconds = exchange(server, head, [b"400\r\n" + b" " * 1024 + b"\r\n"] * 20, pause=0.05)
        assert status == HTTPStatus.LENGTH_REQUIRED
        assert seconds < PROMPT_SECONDS

    def test_a_small_chunked_body_is_never_mistaken_for_an_empty_one(self, server, token):
        created = server.request("POST", TASKS, token=token, body={"title": "Before"})
        assert created[0] == HTTPStatus.CREATED
        head = request_head(
            "PATCH",
            f"{TASKS}/{created[1]['id']}",
            {
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Transfer-Encoding": "chunked",
            },
        )

        status, _ = exchange(server, head, chunked(b'{"title": "After"}'))

        assert status == HTTPStatus.LENGTH_REQUIRED
        assert server.request("GET", f"{TASKS}/{created[1]['id']}", token=token)[1]["title"] == "Before"

    def test_a_100_kb_query_string_is_414(self, server, token):
        status, seconds = exchange(
            server,
            request_head("GET", f"{TASKS}?search={'x' * 100_000}", {"Authorization": f"Bearer {token}"}),
        )
        assert status == HTTPStatus.REQUEST_URI_TOO_LONG
        assert seconds < PROMPT_SECONDS

    def test_a_flood_of_headers_is_431(self, server, token):
        headers = {"Authorization": f"Bearer {token}", **{f"X-Flood-{n}": "y" for n in range(1000)}}
        status, seconds = exchange(server, request_head("GET", TASKS, headers))
        assert status == HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
        assert seconds < PROMPT_SECONDS

    def test_a_100_kb_header_is_431(self, server, token):
        status, seconds = exchange(
            server, request_head("GET", TASKS, {"Authorization": f"Bearer {token}", "X-Huge": "y" * 100_000})
        )
        assert status == HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
        assert seconds < PROMPT_SECONDS

    def test_a_100_kb_token_is_431(self, server):
        status, seconds = exchange(
            server, request_head("GET", TASKS, {"Authorization": "Bearer " + "e" * 100_000})
        )
        assert status == HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
        assert seconds < PROMPT_SECONDS

    def test_the_server_still_answers_after_all_of_it(self, server, token):
        assert server.request("GET", TASKS, token=token)[0] == HTTPStatus.OK
