"""Real processes for the deployment tests: gunicorn and PostgreSQL on free loopback ports, plain HTTP."""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Our own variables: the servers get exactly what a test gives them, nothing from the caller.
OWN_PREFIXES = ("DJANGO_", "DATABASE_", "BETTER_AUTH_", "CORS_", "GUNICORN_", "API_", "LOG_LEVEL", "PORT")


def clean_env(**variables):
    env = {name: value for name, value in os.environ.items() if not name.startswith(OWN_PREFIXES)}
    env.update(variables)
    return env


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Response {self.status} {self.body[:300]!r}>"


def request(port, method, path, headers=None, body=None, timeout=10):
    """One request on its own connection to 127.0.0.1; redirects are not followed."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return Response(
            response.status, {name.lower(): value for name, value in response.getheaders()}, response.read()
        )
    finally:
        connection.close()


class Gunicorn:
    """A gunicorn started like the Docker image starts it, in its own session, output in a file."""

    def __init__(self, argv, *, cwd, env, port, log_dir):
        self.port = port
        self.log_path = Path(log_dir) / f"gunicorn-{port}.log"
        self.log_file = open(self.log_path, "wb")  # noqa: SIM115 (open while the server runs, closed in stop())
        self.process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if request(self.port, "GET", "/healthz", timeout=2).status == 200:
                    return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"gunicorn did not come up:\n{self.log()}")
            time.sleep(0.1)

    def get(self, path, **headers):
        return request(self.port, "GET", path, headers=headers)

    def log(self):
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout=15):
        """SIGTERM, as `docker stop` sends it; the exit status of gunicorn."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)  # the session started for it above
                self.process.wait()
        self.log_file.close()
        return self.process.returncode


def postgres_bin_dir():
    for candidate in [os.environ.get("POSTGRES_BIN_DIR"), *sorted(Path("/usr/lib/postgresql").glob("*/bin"))]:
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    path = shutil.which("initdb")
    if path:
        return Path(path).parent
    raise RuntimeError("PostgreSQL's initdb and pg_ctl are needed (set POSTGRES_BIN_DIR to their folder)")


class PostgresCluster:
    """A throwaway PostgreSQL cluster of our own on 127.0.0.1, never the machine's shared server.

    PostgreSQL refuses to run as root, so under root its commands run as the `postgres` user.
    """

    def __init__(self):
        self.bin = postgres_bin_dir()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="todo-pg-"))
        self.as_owner = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self.as_owner = ["runuser", "-u", "postgres", "--"]
        self.data = self.dir / "data"
        self._run("initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool, *args):
        argv = [*self.as_owner, str(self.bin / tool), *map(str, args)]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed:\n{result.stdout}\n{result.stderr}\n{self.log()}")

    def start(self):
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off"
        self._run("pg_ctl", "-D", self.data, "-l", self.dir / "server.log", "-o", options, "-w", "start")

    def stop(self):
        self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def log(self):
        try:
            return (self.dir / "server.log").read_text(errors="replace")
        except OSError:
            return ""

    def remove(self):
        subprocess.run(
            [*self.as_owner, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(self.dir, ignore_errors=True)
