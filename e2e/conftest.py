"""Fixtures for the end-to-end interop tests: a real Better Auth server and our API.

Everything here talks over HTTP on 127.0.0.1 only:

* ``better_auth`` servers are the tiny Node.js app in ``e2e/better-auth`` (Better Auth
  1.7, memory adapter, jwt() plugin), one process per configuration, each on a free
  loopback port. ``npm ci`` runs once if its node_modules is missing.
* ``api`` servers are our Django app under gunicorn, against a PostgreSQL database
  created for this test session (``e2e_<random>``) and dropped afterwards. Each API
  process trusts exactly one Better Auth server (BETTER_AUTH_URL), so a stack is one
  Better Auth server plus one API process.

Environment knobs (all optional):
  E2E_DATABASE_ADMIN_URL   where to create/drop the session database
                           (default postgres://postgres@127.0.0.1:5432/postgres)
  E2E_KEEP_LOGS=1          keep the server logs directory after the run
"""

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

import pytest

if str(Path(__file__).resolve().parent) not in sys.path:  # also under --import-mode=importlib
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from e2e_support import BA_DIR, PYTHON, REPO, ApiServer, BetterAuthServer, Stack, base_env


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: end-to-end test against real servers over HTTP (slow)")


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def e2e_log_dir():
    path = Path(tempfile.mkdtemp(prefix="todo-e2e-"))
    yield path
    if os.environ.get("E2E_KEEP_LOGS") == "1":
        print(f"\ne2e server logs kept in {path}")
    else:
        shutil.rmtree(path, ignore_errors=True)


def _node_modules_match_lock():
    """True when node_modules holds exactly the versions package-lock.json pins."""

    def versions(path):
        packages = json.loads(path.read_text())["packages"]
        return {name: entry.get("version") for name, entry in packages.items() if name}

    installed = BA_DIR / "node_modules" / ".package-lock.json"
    try:
        return versions(installed) == versions(BA_DIR / "package-lock.json")
    except (OSError, ValueError, KeyError):
        return False


@pytest.fixture(scope="session")
def better_auth_installed():
    if shutil.which("node") is None or shutil.which("npm") is None:
        # A missing toolchain must not pass silently as skipped interop coverage.
        pytest.fail("Node.js 20 and npm are needed for the Better Auth e2e tests (see README, Quick start)")
    if not _node_modules_match_lock():
        result = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=BA_DIR,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0:
            pytest.fail(f"npm ci failed in {BA_DIR}:\n{result.stdout}\n{result.stderr}")
    return BA_DIR


@pytest.fixture(scope="session")
def e2e_database_url():
    """A fresh PostgreSQL database, migrated once, dropped at the end of the session."""
    import psycopg

    admin_url = os.environ.get("E2E_DATABASE_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    name = f"e2e_{secrets.token_hex(6)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urllib.parse.urlsplit(admin_url)
    url = urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
    try:
        env = base_env()
        env.update(
            DATABASE_URL=url,
            DJANGO_DEBUG="0",
            DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
            DJANGO_ALLOWED_HOSTS="127.0.0.1",
        )
        result = subprocess.run(
            [str(PYTHON), "manage.py", "migrate", "--noinput"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            pytest.fail(f"manage.py migrate failed:\n{result.stdout}\n{result.stderr}")
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def start_stack(better_auth_installed, e2e_database_url, e2e_log_dir):
    """Factory: start a Better Auth server and an API that trusts it; all stopped at the end."""
    started = []

    def start(
        *,
        alg="EdDSA",
        rotation_interval=None,
        grace_period=None,
        expiration=None,
        api_env=None,
        share_secret=False,
        api_host=None,
    ):
        ba = BetterAuthServer(
            e2e_log_dir,
            alg=alg,
            rotation_interval=rotation_interval,
            grace_period=grace_period,
            expiration=expiration,
        )
        started.append(ba)
        api_env = dict(api_env or {})
        if share_secret:  # the API also takes HS256 tokens signed with BETTER_AUTH_SECRET
            api_env["BETTER_AUTH_SECRET"] = ba.secret
        # api_host: the API is told another name for the same server (e.g. localhost for 127.0.0.1).
        better_auth_url = ba.url.replace("127.0.0.1", api_host) if api_host else ba.url
        api = ApiServer(
            e2e_log_dir, database_url=e2e_database_url, better_auth_url=better_auth_url, extra_env=api_env
        )
        started.append(api)
        return Stack(ba, api)

    yield start
    for server in reversed(started):
        server.stop()


@pytest.fixture(scope="module")
def main_stack(start_stack):
    """EdDSA (Better Auth's default), no rotation: the stack for the API contract checks."""
    return start_stack(alg="EdDSA", share_secret=True)
