"""Helpers for the e2e tests: HTTP on loopback, server processes, Better Auth users."""

import base64
import http.cookies
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BA_DIR = Path(__file__).resolve().parent / "better-auth"
PYTHON = REPO / ".venv" / "bin" / "python"
GUNICORN = REPO / ".venv" / "bin" / "gunicorn"
if not PYTHON.exists():  # e.g. a CI that installed into another environment
    PYTHON = Path(sys.executable)
    GUNICORN = Path(sys.executable).with_name("gunicorn")

ALGORITHMS = ("EdDSA", "ES256", "ES512", "RS256", "PS256")
START_TIMEOUT = 60.0
PASSWORD = "correct-horse-battery-1"

# Variables of ours that must not leak from the caller's environment into the servers.
_SCRUBBED_PREFIXES = ("BETTER_AUTH_", "DJANGO_", "DATABASE_", "CORS_", "JWT_", "JWKS_", "API_")


# --------------------------------------------------------------------------- HTTP


@dataclass
class Response:
    status: int
    headers: dict  # lower-cased names; a repeated header keeps its last value
    body: bytes
    set_cookies: list = field(default_factory=list)

    @property
    def json(self):
        return json.loads(self.body) if self.body else None

    def __repr__(self):
        text = self.body[:500].decode("utf-8", "replace")
        return f"<Response {self.status} {text!r}>"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def http_request(method, url, *, token=None, json_body=None, headers=None, data=None, timeout=15):
    """One HTTP request; never raises for an HTTP status. Only loopback URLs are allowed."""
    host = urllib.parse.urlsplit(url).hostname
    assert host == "127.0.0.1", f"e2e traffic must stay on 127.0.0.1, not {url}"
    all_headers = {"Accept": "application/json"}
    if json_body is not None:
        data = json.dumps(json_body).encode()
        all_headers["Content-Type"] = "application/json"
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    all_headers.update(headers or {})
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with _opener.open(request, timeout=timeout) as response:
            return _response(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return _response(error.code, error.headers, error.read())


def _response(status, message, body):
    headers = {name.lower(): value for name, value in message.items()}
    return Response(status, headers, body, message.get_all("Set-Cookie") or [])


def jwt_parts(token):
    """(header, claims) of a compact JWS, decoded without verification."""

    def decode(segment):
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))

    header, payload, _ = token.split(".")
    return decode(header), decode(payload)


# ------------------------------------------------------------------- processes


class ServerProcess:
    """A child process in its own process group, with its output in a log file."""

    def __init__(self, name, args, *, cwd, env, log_dir):
        self.name = name
        self.log_path = Path(log_dir) / f"{name}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            args,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log_text(self):
        try:
            return self.log_path.read_text("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, lines=40):
        return "\n".join(self.log_text().splitlines()[-lines:])

    def wait_for_log(self, pattern, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            match = regex.search(self.log_text())
            if match:
                return match
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not print {pattern!r} within {timeout}s:\n{self.log_tail()}")

    @property
    def running(self):
        return self.proc.poll() is None

    def stop(self, timeout=15):
        if self.proc.poll() is None:
            # The group is the one this process leads (start_new_session): our child and
            # its own children (gunicorn workers), nothing else.
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=timeout)
        self._log.close()


def base_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    env["PYTHONUNBUFFERED"] = "1"
    return env


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
        return response.json["token"]


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
        user = response.json["user"]
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
        return response.json

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
        args = [str(GUNICORN)]
        if (REPO / "gunicorn.conf.py").exists():
            args += ["-c", "gunicorn.conf.py"]
        # One worker: JWKS caches are per process, and the outage test needs the
        # process that saw a key to be the one that answers.
        # No control socket: several test servers (and a developer's) would share its path.
        args += [
            "--bind",
            "127.0.0.1:0",
            "--workers",
            "1",
            "--error-logfile",
            "-",
            "--no-control-socket",
            "todo_api.wsgi",
        ]
        name = f"api-{secrets.token_hex(3)}"
        self.process = ServerProcess(name, args, cwd=REPO, env=env, log_dir=log_dir)
        port = self.process.wait_for_log(r"Listening at: http://127\.0\.0\.1:(\d+)").group(1)
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT
        while True:  # the worker has loaded Django once an unauthenticated request gets 401
            try:
                if self.get("/api/v1/me").status == 401:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or not self.process.running:
                raise RuntimeError(f"API did not come up:\n{self.process.log_tail()}")
            time.sleep(0.1)

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
