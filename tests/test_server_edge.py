"""The server's edge, under gunicorn with gunicorn.conf.py: everything the contract accepts reaches
Django, anything larger is a JSON 4xx, and gunicorn's own refusals are JSON too (todo_api/edge.py)."""

import json
import time
from http import HTTPStatus
from urllib.parse import quote, urlencode

import jwt
import pytest

from authbridge.verifier import MAX_TOKEN_LENGTH
from tasks.filters import MAX_SEARCH_LENGTH, MAX_TAG_PARAMETERS
from tests.live_server import SECRET, LiveServer, hs256_token
from todo_api.edge import (
    LIMIT_REQUEST_FIELD_SIZE,
    LIMIT_REQUEST_FIELDS,
    LIMIT_REQUEST_LINE,
    MAX_QUERY_STRING_BYTES,
    json_error_response,
)

TASKS = "/api/v1/tasks"
APP = "https://app.example.com"
FOUR_BYTE_CHARACTER = "\U0001f600"  # 😀: 4 bytes of UTF-8, 12 once percent-encoded


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(
        tmp_path_factory.mktemp("edge"), workers=1, threads=4, extra_env={"CORS_ALLOWED_ORIGINS": APP}
    )
    yield live
    live.stop()


@pytest.fixture(scope="module")
def token(server):
    token = hs256_token("edge-user")
    assert server.request("GET", "/api/v1/me", token=token)[0] == HTTPStatus.OK
    return token


def request_bytes(target, headers=(), method="GET", version="HTTP/1.1"):
    lines = [f"{method} {target} {version}", "Host: 127.0.0.1", "Connection: close", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def token_of_length(length, sub="edge-user"):
    """A valid HS256 token exactly `length` characters long, padded with a claim of its own."""
    now = int(time.time())
    for pad in range(length * 3 // 4 - 200, length):
        claims = {"sub": sub, "iat": now, "exp": now + 600, "pad": "x" * pad}
        token = jwt.encode(claims, SECRET, algorithm="HS256")
        if len(token) >= length:
            break
    assert len(token) == length, "base64 cannot make this length: pick another"
    return token


# The list's ordering fields once issue 10's are in: the query string limit is sized for them.
ORDERING_FIELDS = ["created_at", "updated_at", "title", "completed", "priority", "due_at", "completed_at"]


def longest_list_query(ordering_fields=ORDERING_FIELDS):
    """Every list parameter at its longest legal value at once (issue 10's filters included): a
    search and the most tags a filter takes, of 4-byte characters, every ordering field descending."""
    parameters = [
        *(("priority", value) for value in ("low", "medium", "high")),
        *(("tag", chr(0x1F600 + n) * 50) for n in range(MAX_TAG_PARAMETERS)),
        ("due_after", "1900-01-01T00:00:00.000000+00:00"),
        ("due_before", "9999-12-31T23:59:59.999999+00:00"),
        ("overdue", "false"),
        ("has_due", "false"),
        ("completed", "false"),
        *(("ordering", f"-{field}") for field in ordering_fields),
        ("limit", "100"),
        ("offset", "2147483647"),
        ("search", FOUR_BYTE_CHARACTER * MAX_SEARCH_LENGTH),
    ]
    return urlencode(parameters, quote_via=quote)


def served_ordering_fields(server):
    """The ordering fields this build documents (issue 10 adds some)."""
    status, schema, _ = server.request("GET", "/api/schema/?format=json")
    assert status == HTTPStatus.OK
    [ordering] = [
        parameter
        for parameter in schema["paths"]["/api/{user_id}/tasks"]["get"]["parameters"]
        if parameter["name"] == "ordering"
    ]
    return [value for value in ordering["schema"]["items"]["enum"] if not value.startswith("-")]


def assert_json_error(response, status, code):
    answered_status, headers, body = response
    assert answered_status == status, body
    assert headers["content-type"] == "application/json"
    error = json.loads(body)
    assert (error["status"], error["code"]) == (status, code)
    assert set(error) == {"status", "code", "message"}
    return error


@pytest.mark.live
class TestWhatTheContractAcceptsReachesDjango:
    def test_a_token_of_the_verifiers_maximum_length_is_accepted(self, server):
        token = token_of_length(MAX_TOKEN_LENGTH)
        assert len(token) == MAX_TOKEN_LENGTH

        assert server.request("GET", "/api/v1/me", token=token)[0] == HTTPStatus.OK

    def test_a_token_one_character_longer_is_refused_by_the_verifier(self, server):
        status, body, _ = server.request("GET", "/api/v1/me", token=token_of_length(MAX_TOKEN_LENGTH + 1))

        assert status == HTTPStatus.UNAUTHORIZED
        assert body["message"] == "Invalid token: the token is too long."

    def test_a_search_of_the_maximum_length_in_4_byte_characters_is_answered(self, server, token):
        target = f"{TASKS}?search={quote(FOUR_BYTE_CHARACTER * MAX_SEARCH_LENGTH)}"

        status, body, _ = server.request("GET", target, token=token)

        assert status == HTTPStatus.OK
        assert body["count"] == 0

    def test_a_search_one_character_longer_is_a_400_naming_it(self, server, token):
        target = f"{TASKS}?search={quote(FOUR_BYTE_CHARACTER * (MAX_SEARCH_LENGTH + 1))}"

        status, body, _ = server.request("GET", target, token=token)

        assert status == HTTPStatus.BAD_REQUEST
        assert body["fields"] == {"search": [f"At most {MAX_SEARCH_LENGTH} characters."]}

    def test_the_longest_legal_combination_of_list_parameters_fits_the_query_string_limit(self):
        assert len(longest_list_query()) <= MAX_QUERY_STRING_BYTES

    def test_the_longest_list_query_reaches_django_on_the_longest_compatibility_path(self, server):
        # A user id of 255 four-byte characters: the longest path any caller can have.
        sub = FOUR_BYTE_CHARACTER * 255
        query = longest_list_query(served_ordering_fields(server))
        query += "&padding=" + "x" * (MAX_QUERY_STRING_BYTES - len(query) - len("&padding="))
        target = f"/api/{quote(sub)}/tasks?{query}"
        assert len(query) == MAX_QUERY_STRING_BYTES
        assert len(f"OPTIONS {target} HTTP/1.1") <= LIMIT_REQUEST_LINE

        status, body, _ = server.request("GET", target, token=hs256_token(sub))

        assert status == HTTPStatus.OK, body
        assert body == []

    def test_a_query_string_over_the_limit_is_a_json_414_from_django(self, server, token):
        target = f"{TASKS}?search=x&padding={'x' * (MAX_QUERY_STRING_BYTES - len('search=x&padding=') + 1)}"

        status, body, _ = server.request("GET", target, token=token)

        assert status == HTTPStatus.REQUEST_URI_TOO_LONG
        assert body == {
            "status": 414,
            "code": "uri_too_long",
            "message": f"The query string is over {MAX_QUERY_STRING_BYTES} bytes.",
        }


@pytest.mark.live
class TestGunicornRefusesInJson:
    def test_a_request_line_over_the_limit_is_414(self, server, token):
        target = f"{TASKS}?search=" + "x" * LIMIT_REQUEST_LINE

        error = assert_json_error(
            server.raw(request_bytes(target, [f"Authorization: Bearer {token}"])),
            HTTPStatus.REQUEST_URI_TOO_LONG,
            "uri_too_long",
        )

        assert error["message"] == f"The request line is over {LIMIT_REQUEST_LINE} bytes."

    @pytest.mark.parametrize(
        "headers",
        [
            [f"X-Huge: {'y' * LIMIT_REQUEST_FIELD_SIZE}"],
            [f"Authorization: Bearer {'e' * LIMIT_REQUEST_FIELD_SIZE}"],
            [f"X-Flood-{n}: y" for n in range(LIMIT_REQUEST_FIELDS + 1)],
            [f"X-Flood-{n}: {'y' * 8000}" for n in range(LIMIT_REQUEST_FIELDS)],
        ],
        ids=["one huge header", "a huge token", "too many headers", "many large headers"],
    )
    def test_headers_over_the_limits_are_431(self, server, headers):
        error = assert_json_error(
            server.raw(request_bytes(TASKS, headers)),
            HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request_header_fields_too_large",
        )

        assert str(LIMIT_REQUEST_FIELD_SIZE) in error["message"]

    @pytest.mark.parametrize(
        "data",
        [
            b"GARBAGE\r\n\r\n",
            request_bytes(TASKS, version="HTTP/9.9"),
            request_bytes(TASKS, method="G(E)T"),
            request_bytes(TASKS, ["Bad Name: x"]),
            request_bytes(TASKS, ["X-Control: a\x01b"]),
            request_bytes(TASKS, ["Content-Length: 12abc"]),
            request_bytes(TASKS, ["Content-Length: 1", "Content-Length: 2"]),
            b"GET /api/v1/tasks HTTP/1.1\nHost: 127.0.0.1\n\n",
        ],
        ids=[
            "not http",
            "unknown version",
            "bad method",
            "bad header name",
            "control character",
            "bad content-length",
            "two content-lengths",
            "bare line feeds",
        ],
    )
    def test_a_malformed_request_is_400(self, server, data):
        error = assert_json_error(server.raw(data), HTTPStatus.BAD_REQUEST, "bad_request")

        assert error["message"] == "The request is not valid HTTP/1.1."

    @pytest.mark.parametrize(
        ("data", "status"),
        [
            (request_bytes(f"{TASKS}?search=" + "x" * LIMIT_REQUEST_LINE, [f"Origin: {APP}"]), 414),
            (request_bytes(TASKS, [f"Origin: {APP}", f"X-Huge: {'y' * LIMIT_REQUEST_FIELD_SIZE}"]), 431),
            (request_bytes(TASKS, [f"Origin: {APP}", "Bad Name: x"]), 400),
        ],
        ids=["414", "431", "400"],
    )
    def test_refusals_carry_the_cors_headers_an_allowed_origin_gets(self, server, data, status):
        answered_status, headers, _ = server.raw(data)

        assert answered_status == status
        assert headers["access-control-allow-origin"] == APP
        assert headers["vary"] == "Origin"

    def test_the_server_still_answers_after_all_of_it(self, server, token):
        assert server.request("GET", TASKS, token=token)[0] == HTTPStatus.OK


@pytest.mark.parametrize(
    ("origins", "expected"),
    [
        ([APP], f"Access-Control-Allow-Origin: {APP}\r\nVary: Origin\r\n"),
        ([APP, "https://admin.example.com"], "Access-Control-Allow-Origin: *\r\nVary: Origin\r\n"),
        ([], ""),
    ],
    ids=["one origin", "several", "none"],
)
def test_a_refusal_names_the_allowed_origin_or_any_when_several_are_allowed(settings, origins, expected):
    settings.CORS_ALLOWED_ORIGINS = origins

    head = json_error_response(431).split(b"\r\n\r\n")[0].decode() + "\r\n"

    assert head.startswith("HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert ("Access-Control-Allow-Origin" in head) is bool(expected)
    assert expected in head
