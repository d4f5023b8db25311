"""A bounded load through the balancer: virtual users, each on one keep-alive connection, one request at
a time, creating tasks and reading them back. Only loopback; it stops by itself at its deadline."""

import asyncio
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

REQUEST_TIMEOUT = 30


@dataclass
class LoadResult:
    statuses: Counter = field(default_factory=Counter)
    served_by: Counter = field(default_factory=Counter)
    # (what, detail) of each request that did not get an HTTP answer below 500.
    failures: list = field(default_factory=list)
    # (token, task id) of every 201.
    created: list = field(default_factory=list)

    @property
    def requests(self):
        return sum(self.statuses.values()) + sum(1 for what, _ in self.failures if what == "connection")


class Connection:
    def __init__(self, port):
        self.port = port
        self.streams = None
        self.local_address = None

    async def request(self, method, path, token, body=None):
        """(status, JSON body, headers); reconnects first if the previous response closed the connection."""
        if self.streams is None:
            self.streams = await asyncio.open_connection("127.0.0.1", self.port)
            self.local_address = self.streams[1].get_extra_info("sockname")
        reader, writer = self.streams
        data = json.dumps(body).encode() if body is not None else b""
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        if body is not None:
            head += "Content-Type: application/json\r\n"
        writer.write(f"{head}Content-Length: {len(data)}\r\n\r\n".encode() + data)
        status_line, *header_lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in header_lines if ": " in line)
        payload = await reader.readexactly(int(headers.get("content-length", 0)))
        if headers.get("connection") == "close":
            self.close()
        is_json = headers.get("content-type", "").startswith("application/json")
        return int(status_line.split()[1]), json.loads(payload) if is_json else payload, headers

    def close(self):
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


async def user(port, token, deadline, result):
    connection = Connection(port)
    number = 0
    while time.monotonic() < deadline:
        number += 1
        try:
            status, body, headers = await asyncio.wait_for(
                connection.request("POST", "/api/v1/tasks", token, {"title": f"Load {number}"}),
                REQUEST_TIMEOUT,
            )
            note(result, status, body, headers)
            if status == 201:
                result.created.append((token, body["id"]))
                status, body, headers = await asyncio.wait_for(
                    connection.request("GET", f"/api/v1/tasks/{body['id']}", token), REQUEST_TIMEOUT
                )
                note(result, status, body, headers)
        except (TimeoutError, OSError, asyncio.IncompleteReadError) as error:
            result.failures.append(("connection", f"{error!r} on {connection.local_address}"))
            connection.close()
    connection.close()


def note(result, status, body, headers):
    result.statuses[status] += 1
    result.served_by[headers.get("x-served-by")] += 1
    if status >= 500:
        result.failures.append((status, body))


class Load:
    """Runs `tokens` users for `seconds` in a thread; `wait()` returns the LoadResult."""

    def __init__(self, port, tokens, seconds):
        self.result = LoadResult()
        deadline = time.monotonic() + seconds

        async def all_users():
            await asyncio.gather(*(user(port, token, deadline, self.result) for token in tokens))

        self.thread = threading.Thread(target=asyncio.run, args=(all_users(),), daemon=True)
        self.thread.start()

    def wait(self):
        self.thread.join(timeout=REQUEST_TIMEOUT * 2 + 60)
        assert not self.thread.is_alive(), "the load did not stop"
        return self.result
