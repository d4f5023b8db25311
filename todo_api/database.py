"""Database connections made cheaper per request, keeping what they guarantee."""

import time
from collections.abc import Callable
from datetime import UTC
from typing import Any

import psycopg
from django.conf import settings
from django.core.signals import request_started
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.dispatch import receiver
from psycopg.pq import Format
from psycopg.types.datetime import TimestamptzLoader

TIMESTAMPTZ_OID = psycopg.adapters.types["timestamptz"].oid
# psycopg's own loader, in C when psycopg's binary package is installed, as it is here.
FAST_TIMESTAMPTZ_LOADER = psycopg.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)


class UTCTimestamptzLoader(TimestamptzLoader):
    """psycopg's loader where Django registers one in Python that reparses every timestamp (its cost:
    docs/performance.md). Its `timezone` is what Django compares to decide that a cursor needs
    no loader of its own; the session's time zone being UTC, the values are those Django's would be."""

    timezone = UTC

    def __init__(self, oid: int, context: Any = None) -> None:
        super().__init__(oid, context)
        self.load = FAST_TIMESTAMPTZ_LOADER(oid, context).load  # type: ignore[method-assign,misc]


# Django's CONN_HEALTH_CHECKS runs a `SELECT 1` before the first query of every request. A connection
# that ran a query moments ago is alive unless the database itself failed, which is a 503 either way;
# the connections Neon drops are the idle ones, when its compute suspends (after minutes idle) or its
# pooler restarts. So only connections whose last query is DATABASE_HEALTH_CHECK_IDLE_SECONDS old are
# checked. Use means a query that succeeded, not a request: probes, preflights and refused tokens
# run none.
def note_use(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
    result = execute(sql, params, many, context)
    context["connection"].last_query_at = time.monotonic()
    return result


@receiver(connection_created)
def set_up_connection(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    if note_use not in connection.execute_wrappers:  # the wrapper outlives reconnections
        connection.execute_wrappers.append(note_use)
    raw = connection.connection
    if connection.vendor == "postgresql" and raw.info.parameter_status("TimeZone") == "UTC":
        raw.adapters.register_loader(TIMESTAMPTZ_OID, UTCTimestamptzLoader)


# Runs after Django's close_old_connections (connected first, when django.db is imported), which
# re-arms the check at the start of each request.
@receiver(request_started)
def trust_connections_in_use(**kwargs: Any) -> None:
    now = time.monotonic()
    for connection in connections.all(initialized_only=True):
        last_query = getattr(connection, "last_query_at", None)
        if last_query is not None and now - last_query < settings.DATABASE_HEALTH_CHECK_IDLE_SECONDS:
            connection.health_check_done = True  # type: ignore[attr-defined]  # Django's flag, not in the stubs
