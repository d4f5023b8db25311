"""A stand-in for Better Auth's JWT plugin, for the benchmark only.

It holds one Ed25519 key, publishes it as a JWKS on 127.0.0.1 at
/api/auth/jwks, and mints tokens the way Better Auth does: a compact JWS with
header {"alg":"EdDSA","kid":...} (no "typ"), and a payload that is the user
object (id, email, name, emailVerified, image, createdAt, updatedAt) plus sub
(= id), iat, exp, iss and aud (both the Better Auth base URL).
"""

import base64
import json
import secrets
import string
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ALNUM = string.ascii_letters + string.digits


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def random_id(n=32):
    """Better Auth's ids: n characters of [A-Za-z0-9]."""
    return "".join(secrets.choice(ALNUM) for _ in range(n))


class FakeBetterAuth:
    def __init__(self, host="127.0.0.1", port=0):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the JWKS server only listens on loopback")
        self.key = Ed25519PrivateKey.generate()
        self.kid = random_id(32)
        raw = self.key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.jwk = {"alg": "EdDSA", "crv": "Ed25519", "x": b64url(raw), "kty": "OKP", "kid": self.kid}
        self.jwks_body = json.dumps({"keys": [self.jwk]}).encode()
        self.jwks_hits = 0
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                if self.path.split("?")[0] == "/api/auth/jwks":
                    with outer._lock:
                        outer.jwks_hits += 1
                    body, code = outer.jwks_body, 200
                else:
                    body, code = b'{"error":"not found"}', 404
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self.server.serve_forever, name="jwks", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def mint(self, user_id, email, name, ttl_seconds, now=None):
        now = int(time.time() if now is None else now)
        created = datetime.fromtimestamp(now - 86400, UTC).isoformat(timespec="milliseconds")
        created = created.replace("+00:00", "Z")
        header = {"alg": "EdDSA", "kid": self.kid}
        payload = {
            "id": user_id,
            "email": email,
            "name": name,
            "emailVerified": True,
            "image": None,
            "createdAt": created,
            "updatedAt": created,
            "iat": now,
            "exp": now + int(ttl_seconds),
            "iss": self.url,
            "aud": self.url,
            "sub": user_id,
        }
        signing_input = ".".join(
            b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, payload)
        )
        sig = self.key.sign(signing_input.encode("ascii"))
        return f"{signing_input}.{b64url(sig)}"
