"""The timestamptz loader todo_api/database.py installs is the one cursors use: Django adds none of its own.

Django's psycopg backend gives a cursor a loader of its own (a BaseTzLoader, in Python) when the
connection's loader has another `timezone` than the connection's (DatabaseWrapper.create_cursor).
"""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, connections
from django.db.backends.postgresql.psycopg_any import BaseTzLoader
from psycopg.pq import Format

from todo_api.database import TIMESTAMPTZ_OID, UTCTimestamptzLoader

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the loaders are psycopg's; SQLite's timestamps are text"
)


def cursor_loader(cursor):
    """The class loading timestamptz text for this Django cursor's psycopg cursor."""
    return cursor.cursor.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)


def test_a_cursor_loads_timestamps_with_our_loader_not_one_django_adds(db):
    with connection.cursor() as cursor:
        loader = cursor_loader(cursor)
        cursor.execute("SELECT %s::timestamptz", [datetime(2026, 12, 1, 17, 0, 0, 123456, tzinfo=UTC)])
        [(read,)] = cursor.fetchall()

    assert loader is UTCTimestamptzLoader
    assert not issubclass(loader, BaseTzLoader)
    assert connection.timezone == loader.timezone  # what Django compares
    assert read == datetime(2026, 12, 1, 17, 0, 0, 123456, tzinfo=UTC)
    assert read.tzinfo is UTC


def test_django_would_add_its_own_loader_if_the_time_zones_differed(db, monkeypatch):
    # The check above can fail: with a connection time zone other than our loader's, Django's wins.
    wrapper = connections["default"]  # not the `connection` proxy, whose __dict__ is its own
    monkeypatch.setitem(wrapper.__dict__, "timezone", ZoneInfo("Europe/Paris"))  # a cached_property

    with connection.cursor() as cursor:
        loader = cursor_loader(cursor)

    assert issubclass(loader, BaseTzLoader)
    assert loader.timezone == ZoneInfo("Europe/Paris")
