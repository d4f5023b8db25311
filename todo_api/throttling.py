"""Per-user rate limit (API_USER_RATE): counted in Redis when REDIS_URL is set, so every replica shares
it, else in one SQLite file that every worker of the server shares (API_USER_RATE_FILE).

A fixed window per user: one atomic increment per request (Redis' INCR, or an SQLite upsert under the
file's lock). A user may fit up to twice the rate into the two seconds around a window's end; in
exchange the count needs no read-modify-write race between processes. With neither (runserver, tests)
the count is per process, and the service warns at start. When the store fails, requests are served
unthrottled: a rate limit is not worth an outage.
"""

import hashlib
import logging
import math
import os
import sqlite3
import threading
import time
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.cache import caches
from redis.exceptions import RedisError
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from authbridge.models import User
from todo_api.metrics import THROTTLED

if TYPE_CHECKING:  # rest_framework.views imports this module while it defines APIView
    from rest_framework.views import APIView

logger = logging.getLogger(__name__)

# After a store failure, requests skip it this long: no timeout per request, one log line per outage.
REDIS_RETRY_SECONDS = 5
# How long a request waits for another process's increment before it is served unthrottled.
FILE_BUSY_TIMEOUT_SECONDS = 0.25


def warn_if_per_process() -> None:
    if settings.API_USER_RATE and not settings.REDIS_URL and not settings.API_USER_RATE_FILE:
        logger.warning(
            "API_USER_RATE is set without REDIS_URL or API_USER_RATE_FILE: each process counts "
            "requests on its own, so a user gets the rate once per worker and replica."
        )


class FileCounter:
    """Counts per key and window in an SQLite file, shared by the processes that open the same path.

    One row per user, holding the current window's count: the upsert is atomic under SQLite's write
    lock, so no increment is lost between workers. Nothing needs to survive a crash, hence no fsync
    (`synchronous=OFF`); WAL keeps readers and the writer apart.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.local = threading.local()
        self.purged_before = 0

    def connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self.local, "connection", None)
        if connection is None or self.local.pid != os.getpid():  # never one inherited across a fork
            connection = sqlite3.connect(self.path, timeout=FILE_BUSY_TIMEOUT_SECONDS, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=OFF")
            connection.execute(
                "CREATE TABLE IF NOT EXISTS counts "
                "(key TEXT PRIMARY KEY, period INTEGER NOT NULL, count INTEGER NOT NULL) WITHOUT ROWID"
            )
            self.local.connection, self.local.pid = connection, os.getpid()
        return connection

    def incr(self, key: str, period: int) -> int:
        connection = self.connection()
        if period > self.purged_before:  # once per window and process: users gone quiet leave
            self.purged_before = period
            connection.execute("DELETE FROM counts WHERE period < ?", (period,))
        (count,) = connection.execute(
            "INSERT INTO counts (key, period, count) VALUES (?, ?, 1) ON CONFLICT (key) DO UPDATE SET "
            "count = CASE WHEN period = excluded.period THEN count + 1 ELSE 1 END, period = excluded.period "
            "RETURNING count",
            (key, period),
        ).fetchone()
        return int(count)


_file_counters: dict[str, FileCounter] = {}


def file_counter(path: str) -> FileCounter:
    if path not in _file_counters:
        _file_counters[path] = FileCounter(path)
    return _file_counters[path]


class UserRateThrottle(BaseThrottle):
    """At most API_USER_RATE requests per user and window; anonymous requests are not counted."""

    redis_retry_at = 0.0  # shared by the process's threads on purpose

    def allow_request(self, request: Request, view: "APIView") -> bool:
        if settings.API_USER_RATE is None or not isinstance(request.user, User):
            return True
        limit, window = settings.API_USER_RATE
        now = time.time()
        try:
            count = self.count(request.user, window, now)
        except (RedisError, sqlite3.Error) as error:
            self.skip_store(error)
            return True
        self.retry_after = window - now % window
        if count > limit:
            THROTTLED.inc()
            return False
        return True

    def count(self, user: User, window: int, now: float) -> int:
        if time.monotonic() < UserRateThrottle.redis_retry_at:
            return 0
        user_key = hashlib.sha256((user.sub or user.username).encode()).hexdigest()[:32]
        period = int(now // window)
        if not settings.REDIS_URL and settings.API_USER_RATE_FILE:
            return file_counter(settings.API_USER_RATE_FILE).incr(user_key, period)
        cache = caches["throttle"]
        key = f"throttle:{user_key}:{period}"
        cache.add(key, 0, timeout=window + 1)
        try:
            return cache.incr(key)
        except ValueError:  # evicted or expired between add() and incr(): this request starts it
            cache.add(key, 1, timeout=window + 1)
            return 1

    def skip_store(self, error: RedisError | sqlite3.Error) -> None:
        UserRateThrottle.redis_retry_at = time.monotonic() + REDIS_RETRY_SECONDS
        store = "Redis" if isinstance(error, RedisError) else "API_USER_RATE_FILE"
        logger.warning(
            "%s unavailable, requests are not throttled for %s s: %s", store, REDIS_RETRY_SECONDS, error
        )

    def wait(self) -> int:
        return math.ceil(self.retry_after)
