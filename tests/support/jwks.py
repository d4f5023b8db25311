"""A JWKS endpoint on 127.0.0.1 whose keys, status and availability the caller controls.

Stands in for Better Auth's /api/auth/jwks in the unit tests (tests/conftest.py) and the benchmark.
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class JWKSServer:
    def __init__(self) -> None:
        self.keys: list[Any] = []
        self.status = 200
        self.body: bytes | None = None  # raw bytes to serve instead of the key set
        self.delay = 0.0
        self.requests = 0
        self.user_agents: list[str | None] = []
        self._count_lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.origin}/api/auth/jwks"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real server answers

            def do_GET(self) -> None:
                with server._count_lock:
                    server.requests += 1
                    server.user_agents.append(self.headers.get("User-Agent"))
                time.sleep(server.delay)
                body = server.body if server.body is not None else json.dumps({"keys": server.keys}).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def publish(self, *key_pairs: Any) -> None:
        """Serves the public JWKs (`.jwk`) of these key pairs, and no other."""
        self.keys = [pair.jwk for pair in key_pairs]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
