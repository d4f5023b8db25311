"""The server's edge: how large a request may be, and gunicorn's own refusals in our JSON error shape.

gunicorn.conf.py takes its limits from here and calls answer_errors_in_json(); Django refuses a
query string over MAX_QUERY_STRING_BYTES (todo_api/middleware.py). Together they let everything
the API contract accepts reach Django: a token of the verifier's maximum length in an
`Authorization: Bearer` header, and any query string up to MAX_QUERY_STRING_BYTES on any route.
Anything larger is a JSON 414 or 431 (README, "Errors"). Nothing here needs Django's settings:
the arbiter imports it before they are configured.
"""

import json
import socket
from http import HTTPStatus

from gunicorn import util
from gunicorn.http.message import MAX_REQUEST_LINE

from authbridge.verifier import MAX_TOKEN_LENGTH

# Enough for every list parameter at its maximum together (tasks/filters.py), every character 4
# UTF-8 bytes percent-encoded (12 bytes): a search of MAX_SEARCH_LENGTH characters, MAX_TAG_PARAMETERS
# tags of 50 characters, and every other parameter at its longest value (about 4,700 bytes;
# tests/test_server_edge.py adds them up).
MAX_QUERY_STRING_BYTES = 5000
# gunicorn's maximum (above it gunicorn uses this anyway; 0, "unlimited", would buffer a request
# line of any size from any client). It holds "OPTIONS ", the longest path
# (a 255-character user id of 4-byte characters, percent-encoded: about 3,100 bytes with the rest of
# the route), a query string of MAX_QUERY_STRING_BYTES and " HTTP/1.1".
LIMIT_REQUEST_LINE = MAX_REQUEST_LINE
# Twice what `Authorization: Bearer <a token of MAX_TOKEN_LENGTH>` needs: room for cookies and
# the headers proxies add.
LIMIT_REQUEST_FIELD_SIZE = 2 * (len("Authorization: Bearer \r\n") + MAX_TOKEN_LENGTH)
# gunicorn's default: a browser sends about 20 headers, proxies add a dozen.
LIMIT_REQUEST_FIELDS = 100

# The code and message of each status gunicorn answers for the client's mistakes (RFC 9110 names).
REFUSALS = {
    400: ("bad_request", "The request is not valid HTTP/1.1."),
    414: ("uri_too_long", f"The request line is over {LIMIT_REQUEST_LINE} bytes."),
    431: (
        "request_header_fields_too_large",
        f"A header field is over {LIMIT_REQUEST_FIELD_SIZE} bytes, or there are more than "
        f"{LIMIT_REQUEST_FIELDS} of them.",
    ),
}


def cors_headers() -> str:
    """The CORS headers that let an allowed origin's page read a refusal, as Django's answers do.

    The request's Origin is unknown (gunicorn could not parse the request), so with one allowed
    origin the header names it, and with several it is `*`: that lets any page read this fixed body,
    which says nothing of anyone (the API uses no cookies, so no credentials are involved).
    """
    from django.conf import settings

    origins = settings.CORS_ALLOWED_ORIGINS
    if not origins:
        return ""
    return f"Access-Control-Allow-Origin: {origins[0] if len(origins) == 1 else '*'}\r\nVary: Origin\r\n"


def json_error_response(status: int) -> bytes:
    """The raw HTTP response for a request gunicorn refuses itself."""
    # Imported when an error is written, in a worker: todo_api.errors needs Django's settings.
    from todo_api.errors import error_body

    phrase = HTTPStatus(status).phrase
    code, message = REFUSALS.get(status, (phrase.lower().replace(" ", "_"), f"{phrase}."))
    body = json.dumps(error_body(status, code, message)).encode()
    head = (
        f"HTTP/1.1 {status} {phrase}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"{cors_headers()}"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    # gunicorn's reason and message are dropped: the status says it, and the message may echo
    # (and gunicorn's log keeps) what the client sent.
    util.write_nonblock(sock, json_error_response(status_int))


def answer_errors_in_json() -> None:
    """Makes gunicorn answer its own errors (bad request line, oversized headers...) in JSON.

    gunicorn has no setting for these answers: every worker class sends them through
    `gunicorn.util.write_error(sock, status, reason, message)` once its `handle_error` has chosen
    the status and logged the request. Replacing that one function keeps all of that, whichever
    GUNICORN_WORKER_CLASS runs; a worker subclass overriding handle_error would need one subclass
    per worker class and a copy of its 90-line status mapping. Workers fork from the arbiter that
    runs this, so they inherit it; tests/test_server_edge.py checks it on the installed gunicorn.
    """
    if not callable(getattr(util, "write_error", None)):
        raise RuntimeError("this gunicorn has no util.write_error: see todo_api/edge.py")
    util.write_error = write_json_error
