"""The environment a server under test gets: the caller's, without any variable of ours."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Variables our API, gunicorn.conf.py and the e2e Better Auth server read. A test's server gets exactly
# the ones the test gives it, never one left in the shell of whoever runs the suite.
OUR_PREFIXES = (
    "DJANGO_",
    "DATABASE_",
    "BETTER_AUTH_",
    "CORS_",
    "API_",
    "REDIS_",
    "IDEMPOTENCY_",
    "GUNICORN_",
    "LOG_LEVEL",
    "PORT",
    "JWT_",
    "JWKS_",
    "CHANGES_",
    "WORKER_",
    "DAPR_",
    "EVENTS_",
    "METRICS_",
    "PROMETHEUS_",
    "OTEL_",
    "AXES_",
)


def clean_env(**variables: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith(OUR_PREFIXES)}
    env.update(variables)
    return env


def run_in_django(code: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """Runs Python `code` after django.setup() with our settings, in a fresh process that gets these
    variables and none of ours from the caller."""
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=clean_env(
            DJANGO_SETTINGS_MODULE="todo_api.settings",
            PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
            **variables,
        ),
    )
