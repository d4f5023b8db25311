"""tasks 0002 on a PostgreSQL table that already holds tasks: additive, no rewrite, defaults for old rows.

It runs `manage.py migrate` on a fresh database of its own, whatever DATABASE_URL the suite runs on.
"""

import secrets
import subprocess
import sys
import uuid

import psycopg
import pytest
from psycopg import sql

from tests.live_server import POSTGRES_URL, _database_url
from tests.support.environment import REPO, clean_env

pytestmark = pytest.mark.live


@pytest.fixture
def database():
    name = f"migrations_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield _database_url(name)
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def migrate(database_url, *target):
    env = clean_env(
        DATABASE_URL=database_url,
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="localhost",
    )
    subprocess.run(
        [sys.executable, "manage.py", "migrate", *target, "--noinput", "--verbosity", "0"],
        cwd=REPO,
        env=env,
        check=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def table_file(connection):
    """Where the table's rows live on disk: a rewrite (ALTER TABLE with a volatile default) moves them."""
    return connection.execute("SELECT pg_relation_filenode('tasks_task')").fetchone()[0]


def test_0002_keeps_existing_tasks_in_place_with_medium_priority_no_due_date_and_no_tags(database):
    migrate(database, "tasks", "0001")
    with psycopg.connect(database, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO authbridge_user (password, is_superuser, username, first_name, last_name, email,"
            " is_staff, is_active, date_joined, sub, name)"
            " VALUES ('', false, 'old', '', '', '', false, true, now(), 'old', '')"
        )
        connection.execute(
            "INSERT INTO tasks_task (owner_id, title, description, completed, created_at, updated_at)"
            " SELECT u.id, 'Old ' || n, '', n % 2 = 0, now(), now()"
            " FROM authbridge_user u, generate_series(1, 1000) n"
        )
        before = table_file(connection)

        migrate(database)

        assert table_file(connection) == before
        assert connection.execute(
            "SELECT count(*), min(priority), max(priority), count(due_at), count(completed_at)"
            " FROM tasks_task"
        ).fetchone() == (1000, 2, 2, 0, 0)
        assert connection.execute("SELECT count(*) FROM tasks_task_tags").fetchone() == (0,)
        assert connection.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'task_owner_due_idx'::regclass"
        ).fetchone() == (True,)
        # A row written afterwards by SQL that knows nothing of priority still gets medium.
        connection.execute(
            "INSERT INTO tasks_task (owner_id, title, description, completed, created_at, updated_at)"
            " SELECT id, 'New', '', false, now(), now() FROM authbridge_user"
        )
        assert connection.execute("SELECT priority FROM tasks_task WHERE title = 'New'").fetchone() == (2,)


def test_0002_can_be_reversed_and_applied_again(database):
    migrate(database)

    migrate(database, "tasks", "0001")
    migrate(database)

    with psycopg.connect(database) as connection:
        columns = connection.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'tasks_task'"
        ).fetchall()
    assert {"priority", "due_at", "completed_at"} <= {column for (column,) in columns}
