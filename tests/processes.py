"""Real processes for the deployment tests: gunicorn and PostgreSQL on free loopback ports, plain HTTP.

The launcher, environment scrubbing and HTTP helpers live in tests/support/; this module keeps the
names the deployment tests import from it.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support import http as support_http
from tests.support.environment import clean_env
from tests.support.http import Response, free_port
from tests.support.servers import REPO, ServerProcess

__all__ = ["REPO", "Gunicorn", "PostgresCluster", "Response", "clean_env", "free_port", "request"]


def request(port, method, path, headers=None, body=None, timeout=10):
    """One request to 127.0.0.1:`port` on its own connection; redirects are not followed."""
    return support_http.request(
        method, f"http://127.0.0.1:{port}{path}", headers=headers, body=body, timeout=timeout
    )


class Gunicorn(ServerProcess):
    """A gunicorn started like the Docker image starts it (argv given whole), ready once /healthz is 200."""

    def __init__(self, argv, *, cwd, env, port, log_dir):
        super().__init__(f"gunicorn-{port}", argv, cwd=cwd, env=env, log_dir=log_dir)
        self.port = port
        try:
            self.wait_until(
                lambda: request(port, "GET", "/healthz", timeout=2).status == 200, "answer /healthz"
            )
        except RuntimeError:
            self.stop()
            raise

    @classmethod
    def as_in_the_image(cls, *, env, port, log_dir):
        """The image's CMD, `gunicorn -c gunicorn.conf.py todo_api.wsgi`, run from the repository."""
        argv = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "todo_api.wsgi"]
        return cls(argv, cwd=REPO, env=env, port=port, log_dir=log_dir)

    def get(self, path, **headers):
        return request(self.port, "GET", path, headers=headers)


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
