"""DATABASE_URL and the pool settings: Neon's sslmode, persistent connections or psycopg's pool."""

import json

import pytest

from tests.support.environment import run_in_django

pytestmark = pytest.mark.live

PRODUCTION = {"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "k" * 50, "DJANGO_ALLOWED_HOSTS": "api.example.com"}
NEON_POOLED = "postgres://alice:pw@ep-cool-dawn-123456-pooler.eu-central-1.aws.neon.tech/todo?sslmode=require"


def database(**variables):
    """settings.DATABASES["default"] in a fresh process with these variables, or its error output."""
    code = (
        "import json; from django.conf import settings; "
        "print(json.dumps(settings.DATABASES['default'], default=str))"
    )
    result = run_in_django(code, **PRODUCTION, **variables)
    return json.loads(result.stdout) if result.returncode == 0 else result.stderr


def test_a_neon_url_keeps_sslmode_require_and_reuses_checked_connections():
    settings = database(DATABASE_URL=NEON_POOLED)

    assert settings["ENGINE"] == "django.db.backends.postgresql"
    assert (settings["HOST"], settings["NAME"], settings["USER"]) == (
        "ep-cool-dawn-123456-pooler.eu-central-1.aws.neon.tech",
        "todo",
        "alice",
    )
    assert settings["OPTIONS"] == {"sslmode": "require"}
    assert (settings["CONN_MAX_AGE"], settings["CONN_HEALTH_CHECKS"]) == (60, True)
    # PgBouncer in transaction mode: no cursor may outlive its transaction.
    assert settings["DISABLE_SERVER_SIDE_CURSORS"] is True


def test_the_health_check_of_reused_connections_can_be_switched_off():
    settings = database(DATABASE_URL=NEON_POOLED, DATABASE_CONN_HEALTH_CHECKS="0")

    assert (settings["CONN_MAX_AGE"], settings["CONN_HEALTH_CHECKS"]) == (60, False)


def test_the_pool_replaces_persistent_connections_and_keeps_sslmode():
    settings = database(
        DATABASE_URL=NEON_POOLED,
        DATABASE_POOL="1",
        DATABASE_POOL_MIN_SIZE="3",
        DATABASE_POOL_MAX_SIZE="8",
        DATABASE_POOL_TIMEOUT="2.5",
    )

    assert settings["OPTIONS"] == {
        "sslmode": "require",
        "pool": {"min_size": 3, "max_size": 8, "timeout": 2.5},
    }
    assert settings["CONN_MAX_AGE"] == 0


def test_the_pool_defaults_to_the_default_gunicorn_threads():
    settings = database(DATABASE_URL="postgres://postgres@127.0.0.1:5432/todo", DATABASE_POOL="1")

    assert settings["OPTIONS"]["pool"] == {"min_size": 2, "max_size": 4, "timeout": 5}


def test_the_pool_needs_postgresql():
    assert "DATABASE_POOL needs a PostgreSQL DATABASE_URL" in database(
        DATABASE_URL="sqlite:///x.db", DATABASE_POOL="1"
    )


def test_a_bad_pool_size_stops_start_up_naming_the_variable():
    error = database(
        DATABASE_URL="postgres://postgres@127.0.0.1/todo", DATABASE_POOL="1", DATABASE_POOL_MAX_SIZE="0"
    )

    assert "DATABASE_POOL_MAX_SIZE must be at least 1" in error


def test_sqlite_transactions_take_the_write_lock_when_they_begin():
    """A transaction that reads then writes cannot deadlock with another ("database is locked")."""
    settings = database(DATABASE_URL="sqlite:////tmp/todo-settings-test.sqlite3")

    assert settings["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


def test_postgresql_transactions_are_left_as_they_are():
    assert "transaction_mode" not in database(DATABASE_URL=NEON_POOLED)["OPTIONS"]
