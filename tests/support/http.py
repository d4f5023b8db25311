"""Plain HTTP to servers on 127.0.0.1: one request per connection, no redirects followed."""

import http.client
import json
import socket
from typing import Any
from urllib.parse import urlsplit

from django.utils.datastructures import CaseInsensitiveMapping

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


class Response:
    """Status, headers (any case; a repeated one keeps its last value), body, and the Set-Cookie list."""

    def __init__(self, status: int, header_pairs: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = CaseInsensitiveMapping(dict(header_pairs))
        self.set_cookies = [value for name, value in header_pairs if name.lower() == "set-cookie"]
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.body[:500].decode('utf-8', 'replace')!r}>"


def request(
    method: str,
    url: str,
    *,
    token: str | None = None,
    json_body: Any = None,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 15,
) -> Response:
    """One request; an HTTP error status is a Response, not an exception. Only loopback URLs."""
    parts = urlsplit(url)
    if parts.hostname != LOOPBACK:
        raise ValueError(f"test traffic stays on {LOOPBACK}, not {url}")
    all_headers = {}
    if json_body is not None:
        body = json.dumps(json_body).encode()
        all_headers["Content-Type"] = "application/json"
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    all_headers.update(headers or {})
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection = http.client.HTTPConnection(LOOPBACK, parts.port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=all_headers)
        response = connection.getresponse()
        return Response(response.status, response.getheaders(), response.read())
    finally:
        connection.close()
