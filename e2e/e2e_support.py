"""Helpers for the e2e tests: HTTP on loopback, server processes, Better Auth users."""

import base64
import http.cookies
import json
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.environment import clean_env
from tests.support.http import request
from tests.support.servers import ServerProcess, gunicorn_argv, listening_port

REPO = Path(__file__).resolve().parent.parent
BA_DIR = Path(__file__).resolve().parent / "better-auth"
PYTHON = REPO / ".venv" / "bin" / "python"
if not PYTHON.exists():  # e.g. a CI that installed into another environment
    PYTHON = Path(sys.executable)

ALGORITHMS = ("EdDSA", "ES256", "ES512", "RS256", "PS256")
PASSWORD = "correct-horse-battery-1"


# --------------------------------------------------------------------------- HTTP


def http_request(method, url, *, headers=None, **kwargs):
    """One request, as a JSON client sends it; never raises for an HTTP status. Only loopback URLs."""
    return request(method, url, headers={"Accept": "application/json", **(headers or {})}, **kwargs)


def jwt_parts(token):
    """(header, claims) of a compact JWS, decoded without verification."""

    def decode(segment):
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))

    header, payload, _ = token.split(".")
    return decode(header), decode(payload)


# ------------------------------------------------------------------- processes


def base_env():
    return clean_env(PYTHONUNBUFFERED="1")


# ---------------------------------------------------------------- Better Auth


@dataclass
class BAUser:
    id: str
    email: str
    name: str
    cookie: str
    ba: "BetterAuthServer" = field(repr=False)

    def token(self):
        """A fresh JWT from GET /api/auth/token (session cookie)."""
        response = self.ba.get("/api/auth/token", headers={"Cookie": self.cookie})
        assert response.status == 200, response
        return response.json()["token"]


class BetterAuthServer:
    def __init__(self, log_dir, *, alg="EdDSA", rotation_interval=None, grace_period=None, expiration=None):
        self.alg = alg
        self.secret = secrets.token_urlsafe(32)
        env = base_env()
        env.update(PORT="0", JWT_ALG=alg, BETTER_AUTH_SECRET=self.secret, NODE_ENV="test")
        if rotation_interval is not None:
            env["JWKS_ROTATION_INTERVAL"] = str(rotation_interval)
        if grace_period is not None:
            env["JWKS_GRACE_PERIOD"] = str(grace_period)
        if expiration is not None:
            env["JWT_EXPIRATION"] = expiration
        name = f"better-auth-{alg}-{secrets.token_hex(3)}"
        self.process = ServerProcess(name, ["node", "server.mjs"], cwd=BA_DIR, env=env, log_dir=log_dir)
        self.url = self.process.wait_for_log(r"BETTER_AUTH_READY (http://127\.0\.0\.1:\d+)").group(1)

    def get(self, path, **kwargs):
        return http_request("GET", self.url + path, **kwargs)

    def post(self, path, body, **kwargs):
        # Better Auth rejects cross-site POSTs: send our own origin, as a browser would.
        headers = {"Origin": self.url, **kwargs.pop("headers", {})}
        return http_request("POST", self.url + path, json_body=body, headers=headers, **kwargs)

    def _user_from(self, response, email):
        assert response.status == 200, response
        cookie = http.cookies.SimpleCookie()
        for header in response.set_cookies:
            cookie.load(header)
        session = cookie["better-auth.session_token"]
        user = response.json()["user"]
        assert user["email"].lower() == email.lower(), (user, email)
        return BAUser(user["id"], user["email"], user["name"], f"{session.key}={session.coded_value}", self)

    def sign_up(self, name, email=None, image=None):
        email = email or f"{name.lower()}-{secrets.token_hex(4)}@example.com"
        body = {"email": email, "password": PASSWORD, "name": name}
        if image is not None:
            body["image"] = image
        response = self.post("/api/auth/sign-up/email", body)
        return self._user_from(response, email)

    def sign_in(self, email):
        response = self.post("/api/auth/sign-in/email", {"email": email, "password": PASSWORD})
        return self._user_from(response, email)

    def jwks(self):
        response = self.get("/api/auth/jwks")
        assert response.status == 200, response
        return response.json()

    def stop(self):
        self.process.stop()


# ----------------------------------------------------------------------- API


class ApiServer:
    def __init__(self, log_dir, *, database_url, better_auth_url, extra_env=None):
        env = base_env()
        env.update(
            DATABASE_URL=database_url,
            BETTER_AUTH_URL=better_auth_url,
            BETTER_AUTH_JWKS_REFETCH_INTERVAL="1",
            DJANGO_DEBUG="0",
            DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
            DJANGO_ALLOWED_HOSTS="127.0.0.1",
        )
        env.update(extra_env or {})
        self.env = env
        # One worker: JWKS caches are per process, and the outage test needs the
        # process that saw a key to be the one that answers.
        args = gunicorn_argv("--bind", "127.0.0.1:0", "--workers", "1", "--error-logfile", "-")
        name = f"api-{secrets.token_hex(3)}"
        self.process = ServerProcess(name, args, cwd=REPO, env=env, log_dir=log_dir)
        self.url = f"http://127.0.0.1:{listening_port(self.process)}"
        # The worker has loaded Django once an unauthenticated request gets 401.
        self.process.wait_until(lambda: self.get("/api/v1/me").status == 401, "answer /api/v1/me")

    def request(self, method, path, **kwargs):
        return http_request(method, self.url + path, **kwargs)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def stop(self):
        self.process.stop()


@dataclass
class Stack:
    ba: BetterAuthServer
    api: ApiServer

    def stop(self):
        self.api.stop()
        self.ba.stop()
