"""Support for the API reference tests: the Node tools in clients/typescript, and the API served by
gunicorn as in production (DEBUG off, collected static files)."""

import json
import os
import subprocess
import sys
from contextlib import contextmanager

from tests.live_server import REPO, LiveServer

CLIENT_DIR = REPO / "clients" / "typescript"


def _installed_matches_lock():
    def versions(lock_path):
        packages = json.loads(lock_path.read_text())["packages"]
        return {name: entry.get("version") for name, entry in packages.items() if name}

    try:
        return versions(CLIENT_DIR / "node_modules" / ".package-lock.json") == versions(
            CLIENT_DIR / "package-lock.json"
        )
    except (OSError, ValueError, KeyError):
        return False


def install_client_tools():
    """`npm ci` in clients/typescript, unless node_modules already matches the lock file."""
    if not _installed_matches_lock():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=CLIENT_DIR,
            check=True,
            capture_output=True,
            timeout=600,
        )
    return CLIENT_DIR


def run_node_tool(*args, timeout=300, **env):
    """Runs node or a tool from clients/typescript/node_modules/.bin; its CompletedProcess, output as text."""
    tool = args[0] if args[0] == "node" else str(CLIENT_DIR / "node_modules" / ".bin" / args[0])
    return subprocess.run(
        [tool, *args[1:]],
        cwd=CLIENT_DIR,
        capture_output=True,
        text=True,
        timeout=timeout,
        # Offline and quiet: no usage reports, no update checks.
        env={
            "PATH": os.environ["PATH"],
            "REDOCLY_TELEMETRY": "off",
            "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true",
            **env,
        },
    )


@contextmanager
def served_api(log_dir):
    """The API under gunicorn with gunicorn.conf.py, DEBUG off, after collectstatic (as the image runs it)."""
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=REPO,
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "collectstatic",
            "DJANGO_ALLOWED_HOSTS": "x",
        },
        check=True,
        timeout=300,
    )
    server = LiveServer(log_dir, workers=1, threads=4)
    try:
        yield server
    finally:
        server.stop()
