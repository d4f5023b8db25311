"""Our API under gunicorn on a free loopback port, on a fresh PostgreSQL database of its own.

For tests that need real processes, threads and sockets (concurrency, request limits). The database
is created for the server and dropped after it, whatever DATABASE_URL the suite itself runs on.
"""

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import jwt
import psycopg
from psycopg import sql

from tests.support import http
from tests.support.environment import clean_env
from tests.support.servers import REPO, ServerProcess, gunicorn_argv, listening_port

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
SECRET = "live-server-shared-secret-of-at-least-32-chars"


def _database_url(name):
    parts = urlsplit(POSTGRES_URL)
    return urlunsplit(parts._replace(path=f"/{name}"))


class LiveServer:
    def __init__(self, log_dir, *, workers=2, threads=4, extra_env=None):
        self.database = f"hardening_{uuid.uuid4().hex[:12]}"
        self.database_url = _database_url(self.database)
        self.server = None
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
        env = clean_env(
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
        argv = gunicorn_argv(
            *("--bind", "127.0.0.1:0", "--workers", str(workers), "--worker-class", "gthread"),
            *("--threads", str(threads), "--log-level", "info", "--error-logfile", "-"),
        )
        self.server = ServerProcess(f"gunicorn-{self.database}", argv, cwd=REPO, env=env, log_dir=log_dir)
        self.port = listening_port(self.server)
        # Every worker needs Django loaded; one ready worker is enough here.
        self.server.wait_until(lambda: self.request("GET", "/readyz")[0] == 200, "get ready")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def process(self):
        return self.server.process

    @property
    def log_path(self):
        return self.server.log_path

    def log_tail(self, lines=40):
        return self.server.log_tail(lines)

    def request(self, method, path, *, token=None, body=None, headers=None, timeout=30):
        """(status, JSON body or None, headers) of one request on its own connection; (None, None, {})
        when the connection fails."""
        try:
            response = http.request(
                method,
                f"http://127.0.0.1:{self.port}{path}",
                token=token,
                json_body=body,
                headers=headers,
                timeout=timeout,
            )
        except OSError:
            return None, None, {}
        content_type = response.headers.get("Content-Type", "")
        is_json = content_type.split(";")[0].endswith("json")  # also application/vnd.oai.openapi+json
        return response.status, response.json() if is_json else None, response.headers

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
        if self.server is not None:
            self.server.stop()
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
