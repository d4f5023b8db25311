"""Our API under gunicorn on a free loopback port, on a fresh PostgreSQL database of its own.

For tests that need real processes, threads and sockets (concurrency, request limits). The database
is created for the server and dropped after it, whatever DATABASE_URL the suite itself runs on.
"""

import contextlib
import http.client
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import jwt
import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
SECRET = "live-server-shared-secret-of-at-least-32-chars"
START_TIMEOUT = 60
# Variables of ours that must not leak from the suite's environment into the server.
OUR_PREFIXES = ("BETTER_AUTH_", "DJANGO_", "DATABASE_", "CORS_", "API_", "GUNICORN_")


def _database_url(name):
    parts = urlsplit(POSTGRES_URL)
    return urlunsplit(parts._replace(path=f"/{name}"))


class LiveServer:
    def __init__(self, log_dir, *, workers=2, threads=4, extra_env=None):
        self.database = f"hardening_{uuid.uuid4().hex[:12]}"
        self.database_url = _database_url(self.database)
        self.process = None
        self._admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
        try:
            self._start(log_dir, workers, threads, extra_env or {})
        except BaseException:
            self.stop()
            raise

    def _admin(self, statement):
        with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=10) as connection:
            connection.execute(statement)

    def _start(self, log_dir, workers, threads, extra_env):
        env = {name: value for name, value in os.environ.items() if not name.startswith(OUR_PREFIXES)}
        env.update(
            DATABASE_URL=self.database_url,
            BETTER_AUTH_SECRET=SECRET,
            DJANGO_DEBUG="0",
            DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
            DJANGO_ALLOWED_HOSTS="127.0.0.1",
            PYTHONUNBUFFERED="1",
            LOG_LEVEL="WARNING",
            **extra_env,
        )
        # As in production (the Dockerfile): collectstatic, then gunicorn with gunicorn.conf.py.
        for command in (["migrate"], ["collectstatic"]):
            subprocess.run(
                [sys.executable, "manage.py", *command, "--noinput", "--verbosity", "0"],
                cwd=REPO,
                env=env,
                check=True,
                timeout=120,
                stdin=subprocess.DEVNULL,
            )
        self.log_path = Path(log_dir) / f"gunicorn-{self.database}.log"
        self._log = open(self.log_path, "wb")
        args = [sys.executable, "-m", "gunicorn"]
        if (REPO / "gunicorn.conf.py").exists():
            args += ["-c", "gunicorn.conf.py"]
        args += [
            "--bind",
            "127.0.0.1:0",
            "--workers",
            str(workers),
            "--worker-class",
            "gthread",
            "--threads",
            str(threads),
            "--log-level",
            "info",
            "--error-logfile",
            "-",
            "--no-control-socket",
            "todo_api.wsgi",
        ]
        self.process = subprocess.Popen(
            args,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.port = int(self._wait_for(r"Listening at: http://127\.0\.0\.1:(\d+)").group(1))
        deadline = time.monotonic() + START_TIMEOUT
        while (
            self.request("GET", "/readyz")[0] != 200
        ):  # every worker needs Django loaded; one is enough here
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API did not get ready:\n{self.log_tail()}")
            time.sleep(0.1)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def _wait_for(self, pattern):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            match = re.search(pattern, self.log_path.read_text("utf-8", "replace"))
            if match:
                return match
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.log_tail()}")
            time.sleep(0.05)
        raise RuntimeError(f"gunicorn did not print {pattern!r}:\n{self.log_tail()}")

    def log_tail(self, lines=40):
        return "\n".join(self.log_path.read_text("utf-8", "replace").splitlines()[-lines:])

    def request(self, method, path, *, token=None, body=None, headers=None, timeout=30):
        """(status, JSON body or None, headers) of one request on its own connection."""
        all_headers = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=data, headers=all_headers)
            response = connection.getresponse()
            raw = response.read()
            content_type = response.getheader("Content-Type", "")
            is_json = content_type.split(";")[0].endswith("json")  # also application/vnd.oai.openapi+json
            payload = json.loads(raw) if raw and is_json else None
            return response.status, payload, dict(response.getheaders())
        except OSError:
            return None, None, {}
        finally:
            connection.close()

    def raw(self, data, timeout=10):
        """(status, headers, body) of raw bytes sent on one connection, read until the server closes it.

        For what http.client will not send: malformed requests, oversized lines and headers.
        """
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as connection:
            with contextlib.suppress(OSError):  # the server may answer and close before taking everything
                connection.sendall(data)
            received = b""
            while chunk := connection.recv(65536):
                received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value for name, value in (line.split(": ", 1) for line in header_lines)}
        if headers.get("transfer-encoding") == "chunked":
            body = _dechunked(body)
        return int(status_line.split()[1]), headers, body

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            # Its own session: gunicorn's arbiter and workers, nothing else.
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)
        if self.process is not None:
            self._log.close()
        self._admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.database)))


def _dechunked(data):
    body = b""
    while True:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return body
        body, data = body + data[:size], data[size + 2 :]


def hs256_token(sub, lifetime=600, **claims):
    now = int(time.time())
    return jwt.encode({"sub": sub, "iat": now, "exp": now + lifetime, **claims}, SECRET, algorithm="HS256")
