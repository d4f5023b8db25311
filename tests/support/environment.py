"""The environment a server under test gets: the caller's, without any variable of ours."""

import os

# Variables our API, gunicorn.conf.py and the e2e Better Auth server read. A test's server gets exactly
# the ones the test gives it, never one left in the shell of whoever runs the suite.
OUR_PREFIXES = (
    "DJANGO_",
    "DATABASE_",
    "BETTER_AUTH_",
    "CORS_",
    "API_",
    "GUNICORN_",
    "LOG_LEVEL",
    "PORT",
    "JWT_",
    "JWKS_",
)


def clean_env(**variables: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith(OUR_PREFIXES)}
    env.update(variables)
    return env
