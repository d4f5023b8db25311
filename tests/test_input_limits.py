"""Oversized and hostile input: big bodies, chunked bodies, deep JSON, long query strings, header floods.

Each is a 4xx, promptly, never a 500 or a hang: in process where Django decides, and under gunicorn
with raw sockets where the server's own limits and the way bytes arrive matter.
"""

import json
import socket
import time
from http import HTTPStatus

import pytest

from tests.live_server import LiveServer, hs256_token

TASKS = "/api/v1/tasks"
# Prompt: the server answers without waiting for bytes that will never come.
PROMPT_SECONDS = 5


def post_raw(client, body, content_type="application/json"):
    return client.generic("POST", TASKS, data=body, content_type=content_type)


class TestInProcess:
    def test_a_body_over_the_limit_is_413_before_it_is_parsed(self, alice, settings):
        response = post_raw(alice, json.dumps({"title": "x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE}))
        assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
        assert response.json() == {
            "status": 413,
            "code": "payload_too_large",
            "message": f"The request body is over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.",
        }

    # As deep as fits in the body limit.
    @pytest.mark.parametrize(
        "opener,closer,depth", [("[", "]", 20_000), ('{"a":', "}", 10_000)], ids=["arrays", "objects"]
    )
    def test_deeply_nested_json_is_400(self, alice, opener, closer, depth):
        response = post_raw(alice, opener * depth + closer * depth)
        assert response.status_code == HTTPStatus.BAD_REQUEST
        assert response.json()["code"] == "parse_error"

    def test_a_title_nested_deeply_is_400(self, alice):
        response = post_raw(alice, '{"title":' + "[" * 5000 + "]" * 5000 + "}")
        assert response.status_code == HTTPStatus.BAD_REQUEST

    def test_a_100_kb_search_is_400(self, alice):
        response = alice.get(TASKS, {"search": "x" * 100_000})
        assert response.status_code == HTTPStatus.BAD_REQUEST
        assert response.json()["fields"] == {"search": ["At most 1000 characters."]}

    def test_a_100_kb_query_string_of_many_parameters_is_harmless(self, alice):
        response = alice.get(f"{TASKS}?" + "&".join(f"p{n}=v" for n in range(15_000)))
        assert response.status_code in (HTTPStatus.OK, HTTPStatus.BAD_REQUEST)

    def test_a_lone_surrogate_in_a_title_is_400(self, alice):
        response = post_raw(alice, '{"title": "\\ud800 half a character"}')
        assert response.status_code == HTTPStatus.BAD_REQUEST

    @pytest.mark.parametrize("length", ["12abc", "-5", "1e3"])
    def test_a_content_length_that_is_not_a_number_is_400(self, alice, length):
        response = alice.generic(
            "POST", TASKS, data=b"{}", content_type="application/json", CONTENT_LENGTH=length
        )
        assert response.status_code == HTTPStatus.BAD_REQUEST
        assert response.json()["message"] == "The Content-Length header is not a number."

    def test_a_chunked_body_is_411(self, alice):
        response = alice.generic(
            "POST",
            TASKS,
            data=b'{"title": "x"}',
            content_type="application/json",
            HTTP_TRANSFER_ENCODING="chunked",
        )
        assert response.status_code == HTTPStatus.LENGTH_REQUIRED
        assert response.json() == {
            "status": 411,
            "code": "length_required",
            "message": "The request body must come with a Content-Length.",
        }


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

    def test_a_100_kb_query_string_is_refused(self, server, token):
        status, seconds = exchange(
            server,
            request_head("GET", f"{TASKS}?search={'x' * 100_000}", {"Authorization": f"Bearer {token}"}),
        )
        assert status is not None and 400 <= status < 500
        assert seconds < PROMPT_SECONDS

    def test_a_flood_of_headers_is_refused(self, server, token):
        headers = {"Authorization": f"Bearer {token}", **{f"X-Flood-{n}": "y" for n in range(1000)}}
        status, seconds = exchange(server, request_head("GET", TASKS, headers))
        assert status is not None and 400 <= status < 500
        assert seconds < PROMPT_SECONDS

    def test_a_100_kb_header_is_refused(self, server, token):
        status, seconds = exchange(
            server, request_head("GET", TASKS, {"Authorization": f"Bearer {token}", "X-Huge": "y" * 100_000})
        )
        assert status is not None and 400 <= status < 500
        assert seconds < PROMPT_SECONDS

    def test_a_100_kb_token_is_refused(self, server):
        status, seconds = exchange(
            server, request_head("GET", TASKS, {"Authorization": "Bearer " + "e" * 100_000})
        )
        assert status is not None and 400 <= status < 500
        assert seconds < PROMPT_SECONDS

    def test_the_server_still_answers_after_all_of_it(self, server, token):
        assert server.request("GET", TASKS, token=token)[0] == HTTPStatus.OK
