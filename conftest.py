"""For tests/ and e2e/ alike: the static files manifest that a production start requires.

Servers the tests start from this checkout run as production does, DEBUG off, and refuse to start
without collectstatic's manifest (todo_api/static_manifest.py). The Dockerfile and LiveServer run
collectstatic themselves; this runs it once for the others (HAProxy replicas, the e2e stack, a bare
import of todo_api.wsgi) when a fresh checkout has none.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent


def pytest_sessionstart(session: pytest.Session) -> None:
    """Before collection: a test module may import todo_api.wsgi, which checks the manifest."""
    static_root = Path(os.environ.get("DJANGO_STATIC_ROOT") or REPO / "staticfiles")
    if not (static_root / "staticfiles.json").exists():
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
            cwd=REPO,
            env={
                **os.environ,
                "DJANGO_DEBUG": "0",
                "DJANGO_SECRET_KEY": "collectstatic-only",
                "DJANGO_ALLOWED_HOSTS": "localhost",
            },
            check=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
