"""Per-user rate limit (API_USER_RATE), counted in Redis when REDIS_URL is set so every replica shares it.

A fixed window per user: one atomic INCR per request. A user may fit up to twice the rate into the two
seconds around a window's end; in exchange the count needs no lock and no read-modify-write race
between replicas. Without Redis the count is per process (the service warns at start). When Redis
fails, requests are served unthrottled: a rate limit is not worth an outage.
"""

import hashlib
import logging
import math
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

# After a Redis failure, requests skip it this long: no timeout per request, one log line per outage.
REDIS_RETRY_SECONDS = 5


def warn_if_per_process() -> None:
    if settings.API_USER_RATE and not settings.REDIS_URL:
        logger.warning(
            "API_USER_RATE is set without REDIS_URL: each process counts requests on its own, "
            "so a user gets the rate once per worker and replica."
        )


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
        except RedisError as error:
            self.skip_redis(error)
            return True
        self.retry_after = window - now % window
        if count > limit:
            THROTTLED.inc()
            return False
        return True

    def count(self, user: User, window: int, now: float) -> int:
        if time.monotonic() < UserRateThrottle.redis_retry_at:
            return 0
        cache = caches["throttle"]
        user_key = hashlib.sha256((user.sub or user.username).encode()).hexdigest()[:32]
        key = f"throttle:{user_key}:{int(now // window)}"
        cache.add(key, 0, timeout=window + 1)
        try:
            return cache.incr(key)
        except ValueError:  # evicted or expired between add() and incr(): this request starts it
            cache.add(key, 1, timeout=window + 1)
            return 1

    def skip_redis(self, error: RedisError) -> None:
        UserRateThrottle.redis_retry_at = time.monotonic() + REDIS_RETRY_SECONDS
        logger.warning(
            "Redis unavailable, requests are not throttled for %s s: %s", REDIS_RETRY_SECONDS, error
        )

    def wait(self) -> int:
        return math.ceil(self.retry_after)
