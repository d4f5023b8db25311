"""Idempotent creates: a POST with an Idempotency-Key creates at most one task, and a retry with the
same key and body replays the first response (the IETF httpapi Idempotency-Key draft, as Stripe does)."""

import hashlib
import json
import re
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response

from authbridge.authentication import caller
from authbridge.models import User
from tasks.conditional import TaskViewSetBase
from tasks.models import IdempotencyKey
from todo_api.metrics import IDEMPOTENT_REPLAYS
from todo_api.renderers import render_json

HEADER = "Idempotency-Key"
VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # visible ASCII
REPLAYED_HEADER = "Idempotent-Replayed"
# Expired keys deleted after each new one: more than one, so they cannot pile up when nobody runs
# the purge_idempotency_keys command.
PURGE_BATCH = 10


class InvalidIdempotencyKey(APIException):
    status_code = HTTPStatus.BAD_REQUEST
    default_code = "invalid_idempotency_key"
    default_detail = f"{HEADER} must be 1 to 255 visible ASCII characters."


class IdempotencyKeyReused(APIException):
    status_code = HTTPStatus.UNPROCESSABLE_ENTITY
    default_code = "idempotency_key_reused"
    default_detail = f"This {HEADER} was used with another request. Use a new key for a new task."


class IdempotencyKeyInProgress(APIException):
    status_code = HTTPStatus.CONFLICT
    default_code = "idempotency_key_in_progress"
    default_detail = (
        f"Another request with this {HEADER} was being handled at the same moment, and its result "
        "could not be read back. Retry the request with the same key."
    )


def idempotency_key(request: Request) -> str | None:
    """The request's key, None without one; a malformed one is a 400."""
    key = request.headers.get(HEADER)
    if key is not None and not VALID_KEY.fullmatch(key):
        raise InvalidIdempotencyKey()
    return key


def fingerprint(route: str, data: Any) -> str:
    """What a request asks for: its route and its JSON body, however the keys are ordered or spaced."""
    canonical = json.dumps([route, data], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def expired_before(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)


def remembered(owner: User, key: str, now: datetime | None = None) -> IdempotencyKey | None:
    """The owner's unexpired record of `key`, or None; an expired one is deleted to free the key."""
    record = IdempotencyKey.objects.filter(owner=owner, key=key).first()
    if record is not None and record.created_at < expired_before(now):
        record.delete()
        return None
    return record


def remember(
    owner: User, key: str, request_fingerprint: str, response: Response, headers: dict[str, str]
) -> IdempotencyKey:
    return IdempotencyKey.objects.create(
        owner=owner,
        key=key,
        fingerprint=request_fingerprint,
        status=response.status_code,
        body=render_json(response.data).decode(),
        headers=headers,
    )


def replay(record: IdempotencyKey, request_fingerprint: str) -> Response:
    if record.fingerprint != request_fingerprint:
        raise IdempotencyKeyReused()
    IDEMPOTENT_REPLAYS.inc()
    headers = {**record.headers, REPLAYED_HEADER: "true"}
    return Response(json.loads(record.body), status=record.status, headers=headers)


def purge_expired(now: datetime | None = None, limit: int | None = None) -> int:
    """Deletes expired keys, the oldest `limit` of them when given; returns how many."""
    expired = IdempotencyKey.objects.filter(created_at__lt=expired_before(now))
    if limit is not None:
        oldest = expired.order_by("created_at").values("pk")[:limit]
        expired = IdempotencyKey.objects.filter(pk__in=oldest)
    return expired.delete()[0]


class IdempotentCreateMixin(TaskViewSetBase):
    """For TaskViewSet: `create` honours Idempotency-Key.

    The task and the record of its response are written in one transaction, and (owner, key) is
    unique: of concurrent requests with one key exactly one commits; the others wait on the unique
    index (PostgreSQL) or the write lock (SQLite), then replay what it committed. A request refused
    with a 4xx raises inside the transaction, so nothing of it is remembered.
    """

    def replayed_headers(self, response: Response) -> dict[str, str]:
        """The headers of the first response that a replay repeats."""
        return {name: response[name] for name in ("Location", "ETag") if name in response}

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = idempotency_key(request)
        if key is None:
            return super().create(request, *args, **kwargs)
        request_fingerprint = fingerprint(self.basename, request.data)
        owner = caller(request)
        record = remembered(owner, key)
        if record is None:
            try:
                with transaction.atomic():
                    response = super().create(request, *args, **kwargs)
                    remember(owner, key, request_fingerprint, response, self.replayed_headers(response))
            except IntegrityError:
                record = remembered(owner, key)
                if record is None:  # committed, then expired or its owner deleted: retry
                    raise IdempotencyKeyInProgress() from None
            else:
                purge_expired(limit=PURGE_BATCH)
                return response
        return replay(record, request_fingerprint)
