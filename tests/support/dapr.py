"""A test double of the Dapr sidecar's publish API (daprd's HTTP API, `POST /v1.0/publish/{pubsub}/{topic}`),
on 127.0.0.1 in the test's own process, for the publisher (tasks/events.py) to send to.

It answers as the Dapr docs say daprd does: 204 when the broker took the message, 404
ERR_PUBSUB_NOT_FOUND for a pub/sub component it does not have, 403 ERR_PUBSUB_FORBIDDEN for a topic
the component's scopes do not allow, 400 for a body that is not a CloudEvent; a test scripts more
(500s for a while, an answer slower than the client waits, a connection dropped without an answer,
the sidecar away). Every request is recorded, and every body is parsed and validated with the
CloudEvents SDK. It proves the HTTP contract we rely on, not the Dapr runtime itself.
"""

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cloudevents.core.bindings.http import HTTPMessage, from_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

PUBLISH_PREFIX = "/v1.0/publish/"


@dataclass(frozen=True)
class Answer:
    """What the double does with one request: wait `delay` seconds, then answer `status` (with Dapr's
    error body when it is not a 2xx), or close the connection without a word when `drop`."""

    status: int = HTTPStatus.NO_CONTENT
    delay: float = 0.0
    drop: bool = False
    error_code: str = "ERR_PUBSUB_PUBLISH_MESSAGE"


OK = Answer()
FAIL = Answer(HTTPStatus.INTERNAL_SERVER_ERROR)
DROP = Answer(drop=True)


def slow(seconds: float, status: int = HTTPStatus.NO_CONTENT) -> Answer:
    return Answer(status, delay=seconds)


@dataclass
class Received:
    """One request as the double read it, and what it answered (None: dropped, or not answered yet)."""

    method: str
    path: str
    pubsub: str | None
    topic: str | None
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    envelope: dict[str, Any] | None = None
    event: CloudEvent | None = None
    invalid: str | None = None
    status: int | None = None
    at: float = field(default_factory=time.monotonic)

    @property
    def partition_key(self) -> str | None:
        return (self.query.get("metadata.partitionKey") or [None])[0]


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (its timeout, a SIGKILL) is part of the script, not a failure.
        pass


class DaprSidecar:
    """The double, listening on 127.0.0.1 at `url` until stop(). `components` maps each pub/sub
    component's name to the topics it allows (None: any)."""

    def __init__(self, components: dict[str, set[str] | None] | None = None, port: int = 0) -> None:
        self.components = components if components is not None else {"pubsub": None}
        self.received: list[Received] = []
        self._script: list[Answer] = []
        self._rule: Callable[[Received], Answer | None] | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: QuietServer | None = None
        self.port = port
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- what it answers ------------------------------------------------------------------

    def script(self, *answers: Answer) -> None:
        """The answers to the next requests, in order; after them, the rule's or 204."""
        with self._lock:
            self._script.extend(answers)

    def answer_with(self, rule: Callable[[Received], Answer | None] | None) -> None:
        """A rule deciding each request's answer (None: the default 204), after any scripted ones."""
        with self._lock:
            self._rule = rule

    def _answer_for(self, received: Received) -> Answer:
        with self._lock:
            if self._script:
                return self._script.pop(0)
            rule = self._rule
        return (rule(received) if rule else None) or OK

    # --- what it received -----------------------------------------------------------------

    def requests(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def delivered(self) -> list[Received]:
        """The requests it answered with a 2xx, in the order it received them."""
        return [r for r in self.requests() if r.status is not None and 200 <= r.status < 300]

    def delivered_ids(self) -> list[str]:
        """The ids of the events taken, the first time each was (later copies are duplicates)."""
        seen: dict[str, None] = {}
        for received in self.delivered():
            assert received.envelope is not None
            seen.setdefault(received.envelope["id"], None)
        return list(seen)

    def invalid(self) -> list[Received]:
        return [r for r in self.requests() if r.invalid is not None]

    # --- up and down ----------------------------------------------------------------------

    def start(self) -> None:
        """Listens (again, on the same port after stop(): the sidecar back after an outage)."""
        sidecar = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                sidecar._handle(self)

            def do_GET(self) -> None:
                sidecar._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._stopping.clear()
        self._server = QuietServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(
            target=self._server.serve_forever, name=f"dapr-double-{self.port}", daemon=True
        ).start()

    def stop(self) -> None:
        """Stops listening: connections are then refused, as with daprd gone."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # --- one request ----------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        parts = urlsplit(handler.path)
        pubsub = topic = None
        if parts.path.startswith(PUBLISH_PREFIX):
            pubsub, _, topic = parts.path[len(PUBLISH_PREFIX) :].partition("/")
            pubsub, topic = unquote(pubsub), unquote(topic)
        received = Received(
            method=handler.command,
            path=parts.path,
            pubsub=pubsub,
            topic=topic,
            query=parse_qs(parts.query),
            headers={name.lower(): value for name, value in handler.headers.items()},
            body=body,
        )
        self._validate(received)
        with self._lock:
            self.received.append(received)
        answer = self._contract_answer(received) or self._answer_for(received)
        if answer.delay:
            self._stopping.wait(answer.delay)
        if answer.drop:
            handler.close_connection = True
            return
        received.status = answer.status
        if 200 <= answer.status < 300:
            handler.send_response(answer.status)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        error = json.dumps(
            {"errorCode": answer.error_code, "message": f"double: {answer.error_code}"}
        ).encode()
        handler.send_response(answer.status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(error)))
        handler.end_headers()
        handler.wfile.write(error)

    def _validate(self, received: Received) -> None:
        """Parses the body as a structured-mode CloudEvent with the SDK, which checks the required
        attributes, their types, `time` and the names of extensions."""
        try:
            received.envelope = json.loads(received.body)
            message = HTTPMessage(headers=received.headers, body=received.body)
            event = from_structured(message, JSONFormat(), CloudEvent)
            assert isinstance(event, CloudEvent)
            received.event = event
        except Exception as error:
            received.invalid = f"{type(error).__name__}: {error}"

    def _contract_answer(self, received: Received) -> Answer | None:
        """daprd's own refusals, before anything the test scripted."""
        if received.method != "POST" or received.pubsub is None or not received.topic:
            return Answer(HTTPStatus.NOT_FOUND, error_code="ERR_DIRECT_INVOKE")  # no such route
        if received.pubsub not in self.components:
            return Answer(HTTPStatus.NOT_FOUND, error_code="ERR_PUBSUB_NOT_FOUND")
        allowed = self.components[received.pubsub]
        if allowed is not None and received.topic not in allowed:
            return Answer(HTTPStatus.FORBIDDEN, error_code="ERR_PUBSUB_FORBIDDEN")
        if received.headers.get("content-type") != "application/cloudevents+json" or received.invalid:
            # With any other type daprd would wrap the body in a CloudEvent of its own.
            return Answer(HTTPStatus.BAD_REQUEST, error_code="ERR_PUBSUB_CLOUD_EVENTS_SER")
        return None
