"""Three gunicorn replicas on one fresh PostgreSQL database, behind a real HAProxy, on loopback ports.

The HAProxy configuration is the production one in miniature; docs/deploy.md explains each setting.
"""

import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from psycopg import sql

from tests.live_server import POSTGRES_URL, SECRET, _database_url
from tests.support.environment import clean_env
from tests.support.http import free_port

REPO = Path(__file__).resolve().parents[2]
REPLICAS = ("r1", "r2", "r3")
WORKERS, THREADS = 2, 2
# What one replica serves at once; the balancer queues the rest instead of piling them on a backlog.
SERVER_MAXCONN = WORKERS * THREADS
DRAIN_SECONDS = 3
CHECK_INTERVAL_MS = 500
START_TIMEOUT = 60

HAPROXY_CONFIG = """\
global
    maxconn 4096
    stats socket {socket} mode 600 level admin
    log stdout format raw local0

defaults
    mode http
    log global
    # One line per failed request (its termination state says which side failed), none for the rest.
    option httplog
    option dontlog-normal
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout queue 30s
    # A check slower than this fails (a replica too busy to answer its probe in 2 s is unwell).
    timeout check 2s
    timeout http-request 10s
    # One request per server connection: a replica never closes an idle connection under a request.
    option http-server-close
    # A refused or failed connect is retried (3 times), each retry on another replica.
    retries 3
    option redispatch 1
    retry-on conn-failure

frontend api
    bind 127.0.0.1:{port}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk
    http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host 127.0.0.1
    http-check expect status 200
    # Out of rotation after two failed checks, within a second of a replica's drain starting (it says
    # 503 at once); back after two good ones. And at once when live traffic cannot connect (a crashed
    # replica), not only at the next check.
    default-server check inter {interval}ms fastinter {interval}ms downinter {interval}ms fall 2 rise 2
    default-server observe layer4 error-limit 1 on-error mark-down maxconn {maxconn}
    # Which replica answered, so the tests can see the spread.
    http-response set-header X-Served-By %s
{servers}
"""


class Replica:
    """One gunicorn (gunicorn.conf.py), restartable on the same port."""

    def __init__(self, name, env, log_dir):
        self.name, self.env, self.log_dir = name, env, Path(log_dir)
        self.port = free_port()
        self.process = None
        self.starts = 0

    def start(self):
        self.starts += 1
        self.log = open(self.log_dir / f"{self.name}-{self.starts}.log", "wb")  # noqa: SIM115 (the process writes it)
        args = ["-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{self.port}", "--no-control-socket"]
        args += ["--workers", str(WORKERS), "--threads", str(THREADS), "todo_api.wsgi"]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", *args],
            cwd=REPO,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(lambda: get_status(self.port, "/readyz") == 200, f"{self.name} to get ready", self.process)

    def terminate(self):
        """SIGTERM, as Kubernetes or `docker stop` sends it; gunicorn's exit status."""
        self.process.send_signal(signal.SIGTERM)
        status = self.process.wait(timeout=START_TIMEOUT)
        self.log.close()
        return status

    def kill(self):
        """SIGKILL to the arbiter and its workers, as when a node dies."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=START_TIMEOUT)
        self.log.close()

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.kill()


class HAProxy:
    def __init__(self, replicas, run_dir):
        self.port = free_port()
        self.socket = Path(run_dir) / "haproxy.sock"
        servers = "\n".join(f"    server {r.name} 127.0.0.1:{r.port}" for r in replicas)
        config = Path(run_dir) / "haproxy.cfg"
        config.write_text(
            HAPROXY_CONFIG.format(
                socket=self.socket,
                port=self.port,
                interval=CHECK_INTERVAL_MS,
                maxconn=SERVER_MAXCONN,
                servers=servers,
            )
        )
        subprocess.run(["haproxy", "-c", "-q", "-f", config], check=True, timeout=30)
        self.log = open(Path(run_dir) / "haproxy.log", "wb")  # noqa: SIM115 (the process writes it)
        self.process = subprocess.Popen(
            ["haproxy", "-db", "-f", config],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(lambda: set(self.server_states().values()) == {"UP"}, "every replica UP", self.process)

    def server_states(self):
        """{"r1": "UP", ...} from HAProxy's own view (its stats socket)."""
        try:
            with socket.socket(socket.AF_UNIX) as stats:
                stats.settimeout(5)
                stats.connect(str(self.socket))
                stats.sendall(b"show stat\n")
                data = b"".join(iter(lambda: stats.recv(65536), b""))
        except OSError:
            return {}
        header, *rows = data.decode().splitlines()
        fields = header.lstrip("# ").split(",")
        # Only the fields up to the status: later ones (check details) may contain commas.
        fields = fields[: fields.index("status") + 1]
        rows = [dict(zip(fields, row.split(",")[: len(fields)], strict=True)) for row in rows if row]
        return {row["svname"]: row["status"] for row in rows if row["pxname"] == "replicas"}

    def wait_for(self, name, state):
        wait_until(
            lambda: self.server_states().get(name) == state, f"HAProxy to see {name} {state}", self.process
        )

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=15)
        self.log.close()


class Cluster:
    """The database, the replicas and the balancer; `request` goes through the balancer."""

    def __init__(self, run_dir):
        self.database = f"replicas_{secrets.token_hex(6)}"
        self.database_url = _database_url(self.database)
        self.replicas, self.haproxy = [], None
        self._admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
        try:
            env = self._env()
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "--noinput", "--verbosity", "0"],
                cwd=REPO,
                env=env,
                check=True,
                timeout=120,
                stdin=subprocess.DEVNULL,
            )
            self.replicas = {name: Replica(name, env, run_dir) for name in REPLICAS}
            for replica in self.replicas.values():
                replica.start()
            self.haproxy = HAProxy(self.replicas.values(), run_dir)
            self.port = self.haproxy.port
        except BaseException:
            self.stop()
            raise

    def _env(self):
        return clean_env(
            DATABASE_URL=self.database_url,
            BETTER_AUTH_SECRET=SECRET,
            DJANGO_DEBUG="0",
            DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
            DJANGO_ALLOWED_HOSTS="127.0.0.1",
            GUNICORN_DRAIN_SECONDS=str(DRAIN_SECONDS),
            PYTHONUNBUFFERED="1",
            LOG_LEVEL="WARNING",
        )

    def _admin(self, statement):
        with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=10) as connection:
            connection.execute(statement)

    def query(self, statement, params=()):
        with psycopg.connect(self.database_url, connect_timeout=10) as connection:
            return connection.execute(statement, params).fetchall()

    def request(self, method, path, *, token=None, body=None, headers=None, timeout=30):
        """(status, JSON body or None, lower-cased headers) of one request through the balancer."""
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
            is_json = response.getheader("Content-Type", "").startswith("application/json")
            headers = {name.lower(): value for name, value in response.getheaders()}
            return response.status, json.loads(raw) if raw and is_json else None, headers
        finally:
            connection.close()

    def restart(self, name):
        """Starts a stopped replica again and waits until the balancer sends it requests."""
        self.replicas[name].start()
        self.haproxy.wait_for(name, "UP")

    def stop(self):
        if self.haproxy is not None:
            self.haproxy.stop()
        for replica in self.replicas.values():
            replica.stop()
        self._admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.database)))


def get_status(port, path):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


def wait_until(condition, what, process, timeout=START_TIMEOUT):
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise RuntimeError(f"gave up waiting for {what}: the process exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up waiting for {what} after {timeout} s")
        time.sleep(0.1)
