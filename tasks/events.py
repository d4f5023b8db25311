"""The event publisher: sends the events recorded with the changes (the outbox) to Dapr pub/sub as
structured CloudEvents 1.0, at least once and in order per user (docs/events.md).

Each poll reads the oldest pending events in one query on the partial index change_unpublished_idx,
sends each user's in order and marks one published only after Dapr's 2xx, with a conditional UPDATE.
A user whose event fails waits (exponential backoff with full jitter) and is left out of the next
queries meanwhile, so other users' events go on. Several publishers may run: an event two of them
send goes out twice with the same id, which consumers de-duplicate by.
"""

import contextlib
import http.client
import json
import logging
import random
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from rest_framework.utils.encoders import JSONEncoder

from tasks.models import Change
from todo_api.metrics import (
    EVENT_PUBLISH_FAILURES,
    EVENTS_OLDEST_PENDING_SECONDS,
    EVENTS_PENDING,
    EVENTS_PUBLISHED,
)

logger = logging.getLogger("tasks.events")

# The events a publisher reads per query. A full batch is followed by the next query at once.
BATCH_SIZE = 200
# Seconds to wait for the sidecar's answer: daprd answers once the broker has the message.
TIMEOUT_SECONDS = 5.0
# A failing user's wait before its next try: BACKOFF_FIRST doubling up to BACKOFF_CAP, each wait a
# random time up to that ("full jitter"), so users failing together do not retry together.
BACKOFF_FIRST = 1.0
BACKOFF_CAP = 60.0
# The oldest waiting event is worth a warning past this age: Dapr or the broker is away, or misconfigured.
STALE_AFTER = timedelta(minutes=1)
# How often the publisher looks at the oldest waiting event (a second indexed query).
STALE_CHECK = timedelta(seconds=10)

# Events of one user sent per claim on PostgreSQL (claimed()): a crash mid-claim sends them again.
CLAIM_SIZE = 20
# The first key of the publishers' advisory locks on PostgreSQL (the second is the user's id).
ADVISORY_LOCK_SPACE = 0x7E7E

PENDING = Q(event__isnull=False, published_at__isnull=True)  # the partial index's condition

TASK_TYPES: dict[str, str] = {
    Change.Action.CREATED: "todo.task.created.v1",
    Change.Action.UPDATED: "todo.task.updated.v1",
    Change.Action.COMPLETED: "todo.task.completed.v1",
    Change.Action.DELETED: "todo.task.deleted.v1",
}
REMINDER_TYPE = "todo.reminder.due.v1"

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Pending:
    """One event waiting to go out, as the publisher's query reads it."""

    id: int
    owner_id: int
    sub: str
    task_id: int
    action: str
    recorded_at: datetime
    event: dict[str, Any]


def rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def topic_of(action: str) -> str:
    return (
        settings.EVENTS_TOPIC_REMINDERS if action == Change.Action.REMINDED else settings.EVENTS_TOPIC_TASKS
    )


def cloud_event(pending: Pending) -> dict[str, Any]:
    """The structured CloudEvent 1.0 of a recorded change: the same document on every retry."""
    if pending.action == Change.Action.DELETED:
        data: dict[str, Any] = {"user_id": pending.sub, "id": pending.task_id}
    else:
        data = {"user_id": pending.sub, "task": pending.event.get("task")}
    envelope = {
        "specversion": "1.0",
        "id": str(pending.id),
        "source": settings.EVENTS_SOURCE,
        "type": REMINDER_TYPE if pending.action == Change.Action.REMINDED else TASK_TYPES[pending.action],
        "subject": str(pending.task_id),
        "time": rfc3339(pending.recorded_at),
        "datacontenttype": "application/json",
        "data": data,
    }
    if pending.event.get("traceparent"):
        # The distributed-tracing extension: the trace of the request whose write this is.
        envelope["traceparent"] = pending.event["traceparent"]
    return envelope


def pending_events(limit: int, *, excluding: Iterable[int] = ()) -> list[Pending]:
    """The oldest `limit` events not yet published, leaving out these owners': a range scan of
    change_unpublished_idx joined to the owners for their Better Auth id."""
    waiting = Change.objects.filter(PENDING).exclude(owner_id__in=list(excluding))
    rows = waiting.order_by("id").values_list(
        "id", "owner_id", "owner__sub", "task_id", "action", "recorded_at", "event"
    )[:limit]
    # A user without a Better Auth id (staff made with createsuperuser) is partitioned by their local id.
    # The query leaves out null events; `event or {}` only tells the type checker.
    return [
        Pending(pk, owner, sub or f"local:{owner}", task_id, action, recorded_at, event or {})
        for pk, owner, sub, task_id, action, recorded_at, event in rows
    ]


@contextlib.contextmanager
def claimed(owner_id: int, events: list[Pending]) -> Iterator[list[Pending]]:
    """The user's events to send now. On PostgreSQL, where several publishers may run, a transaction
    holding an advisory lock on the user for the stream (a lock that ends with the transaction, so
    PgBouncer's transaction mode keeps it on one server connection): another publisher skips the user
    meanwhile, and after the lock the events a publisher that went before marked are left out. Without
    it, two publishers would send nearly every event twice. A crash mid-claim rolls back its marks:
    those events (CLAIM_SIZE at most) go out again, with the same ids. SQLite allows one writer (one
    publisher): no lock, and no transaction, which would hold the database through the HTTP calls."""
    if connection.vendor != "postgresql":
        yield events
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {Change._meta.db_table} "  # noqa: S608 (the model's own table name)
            "WHERE id = ANY(%s) AND published_at IS NULL AND pg_try_advisory_xact_lock(%s, %s)",
            [[pending.id for pending in events], ADVISORY_LOCK_SPACE, owner_id],
        )
        left = {row[0] for row in cursor.fetchall()}
        yield [pending for pending in events if pending.id in left]


def backlog() -> tuple[int, datetime | None]:
    """How many events wait, and when the oldest was recorded (None when none does)."""
    waiting = Change.objects.filter(PENDING)
    oldest = waiting.order_by("id").values_list("recorded_at", flat=True).first()
    return waiting.count(), oldest


class Sidecar:
    """The Dapr sidecar's publish API over HTTP, one connection reused for the sends of one poll."""

    def __init__(self, endpoint: str, *, timeout: float = TIMEOUT_SECONDS) -> None:
        parts = urlsplit(endpoint)
        self.https = parts.scheme == "https"
        self.host = parts.netloc
        self.base_path = parts.path.rstrip("/")
        self.timeout = timeout
        self._connection: http.client.HTTPConnection | None = None

    def path(self, topic: str, partition_key: str) -> str:
        pubsub = quote(settings.EVENTS_PUBSUB, safe="")
        return (
            f"{self.base_path}/v1.0/publish/{pubsub}/{quote(topic, safe='')}"
            f"?metadata.partitionKey={quote(partition_key, safe='')}"
        )

    def publish(self, topic: str, partition_key: str, envelope: dict[str, Any]) -> tuple[int, bytes]:
        """(status, body) of Dapr's answer; OSError (timeouts, refused or dropped connections) and
        http.client.HTTPException propagate, the connection closed."""
        body = json.dumps(envelope, cls=JSONEncoder, ensure_ascii=False).encode()
        if self._connection is None:
            kind = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            self._connection = kind(self.host, timeout=self.timeout)
        try:
            # Structured mode: Dapr forwards the envelope as it is instead of wrapping it in another.
            self._connection.request(
                "POST",
                self.path(topic, partition_key),
                body=body,
                headers={"Content-Type": "application/cloudevents+json"},
            )
            response = self._connection.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


@dataclass
class Backoff:
    attempts: int = 0
    until: datetime | None = None


@dataclass
class Publisher:
    """Polls every `poll_seconds` until `stop` is set; `clock` decides backoff and ages, `jitter`
    draws the fraction of each backoff's ceiling waited (random.random)."""

    endpoint: str
    poll_seconds: float
    batch_size: int = BATCH_SIZE
    timeout: float = TIMEOUT_SECONDS
    clock: Clock = timezone.now
    jitter: Callable[[], float] = random.random
    stop: threading.Event = field(default_factory=threading.Event)
    published: int = 0
    failed: int = 0
    backoff: dict[int, Backoff] = field(default_factory=dict)
    stale_checked_at: datetime | None = None
    stale_warned_at: datetime | None = None

    def __post_init__(self) -> None:
        self.sidecar = Sidecar(self.endpoint, timeout=self.timeout)

    def waiting_owners(self, now: datetime) -> list[int]:
        return [owner for owner, state in self.backoff.items() if state.until and state.until > now]

    def poll(self) -> int:
        """One query, then each user's events in order, a user's stream stopping at its first failure.
        The number of events the query found (a full batch means more may be waiting)."""
        batch = pending_events(self.batch_size, excluding=self.waiting_owners(self.clock()))
        by_owner: dict[int, list[Pending]] = {}
        for pending in batch:
            by_owner.setdefault(pending.owner_id, []).append(pending)
        sent = 0
        try:
            for owner_id, events in by_owner.items():
                delivered = 0
                for start in range(0, len(events), CLAIM_SIZE):
                    if self.stop.is_set():  # SIGTERM: the event in hand is done; the rest wait
                        break
                    with claimed(owner_id, events[start : start + CLAIM_SIZE]) as still_pending:
                        count, finished = self.send_in_order(owner_id, still_pending)
                    delivered += count
                    if not finished:
                        break  # the user's stream stopped at a failure (or SIGTERM)
                else:
                    self.backoff.pop(owner_id, None)
                sent += delivered
        finally:
            self.sidecar.close()  # an idle sidecar connection is not kept between polls
            if sent:
                logger.info("published %s events", sent, extra={"published": sent})
        self.warn_if_stale()
        return len(batch)

    def send_in_order(self, owner_id: int, events: list[Pending]) -> tuple[int, bool]:
        """Sends a user's events in order until one fails (its user then backs off) or `stop` is set:
        how many went out, and whether all did."""
        for count, pending in enumerate(events):
            if self.stop.is_set():
                return count, False
            if not self.send(pending):
                self.back_off(owner_id, pending)
                return count, False
        return len(events), True

    def send(self, pending: Pending) -> bool:
        """Publishes one event and marks it; False when Dapr did not take it."""
        topic = topic_of(pending.action)
        try:
            status, body = self.sidecar.publish(topic, pending.sub, cloud_event(pending))
        except (OSError, http.client.HTTPException) as error:
            self.log_failure(pending, topic, f"{type(error).__name__}: {error}", None, b"")
            return False
        if not 200 <= status < 300:
            self.log_failure(pending, topic, f"HTTP {status}", status, body)
            return False
        # Conditional: another publisher may have marked it first; its time stands.
        Change.objects.filter(pk=pending.id, published_at__isnull=True).update(published_at=self.clock())
        self.published += 1
        EVENTS_PUBLISHED.inc()
        return True

    def log_failure(self, pending: Pending, topic: str, reason: str, status: int | None, body: bytes) -> None:
        self.failed += 1
        EVENT_PUBLISH_FAILURES.inc()
        fields = {
            "change_id": pending.id,
            "task_id": pending.task_id,
            "user": pending.sub,
            "pubsub": settings.EVENTS_PUBSUB,
            "topic": topic,
            "status": status,
            "dapr_error": body[:500].decode("utf-8", "replace") or None,
        }
        if status in (403, 404):
            logger.error(
                "Dapr answered %s for pub/sub %r topic %r: a configuration problem (a missing pub/sub "
                "component, or a topic the component's scopes do not allow); retrying, nothing dropped",
                status,
                settings.EVENTS_PUBSUB,
                topic,
                extra=fields,
            )
        else:
            logger.warning("publishing event %s failed (%s); will retry", pending.id, reason, extra=fields)

    def back_off(self, owner_id: int, pending: Pending) -> None:
        state = self.backoff.setdefault(owner_id, Backoff())
        ceiling = min(BACKOFF_CAP, BACKOFF_FIRST * 2**state.attempts)
        state.attempts += 1
        delay = ceiling * self.jitter()
        state.until = self.clock() + timedelta(seconds=delay)
        logger.info(
            "events of user %s wait %.2f s (attempt %s)",
            pending.sub,
            delay,
            state.attempts,
            extra={"user": pending.sub, "backoff_seconds": round(delay, 3), "attempts": state.attempts},
        )

    def warn_if_stale(self) -> None:
        """Every STALE_CHECK of the clock, how many events wait and how old the oldest is (the metrics),
        and a warning, at most once a minute, while it is over STALE_AFTER."""
        now = self.clock()
        if self.stale_checked_at is not None and now - self.stale_checked_at < STALE_CHECK:
            return
        self.stale_checked_at = now
        count, recorded_at = backlog()
        EVENTS_PENDING.set(count)
        EVENTS_OLDEST_PENDING_SECONDS.set((now - recorded_at).total_seconds() if recorded_at else 0)
        if recorded_at is None or now - recorded_at <= STALE_AFTER:
            return
        if self.stale_warned_at is not None and now - self.stale_warned_at < STALE_AFTER:
            return
        self.stale_warned_at = now
        age = round((now - recorded_at).total_seconds())
        logger.warning(
            "%s events wait; the oldest for %s s (is Dapr or its broker away?)",
            count,
            age,
            extra={"pending": count, "oldest_age_seconds": age},
        )

    def next_wake(self) -> float:
        """Seconds to the next poll: the poll interval, or sooner when a user's backoff ends before."""
        now = self.clock()
        ends = [(state.until - now).total_seconds() for state in self.backoff.values() if state.until]
        return max(0.0, min([self.poll_seconds, *ends]))

    def run(self) -> None:
        logger.info(
            "publisher started: polling every %s s, publishing to %s",
            self.poll_seconds,
            self.endpoint,
            extra={"poll_seconds": self.poll_seconds, "pubsub": settings.EVENTS_PUBSUB},
        )
        try:
            while not self.stop.is_set():
                try:
                    found = self.poll()
                except DatabaseError:
                    # As the reminders' loop: a fresh connection at the next poll; nothing half-done.
                    logger.exception("publisher poll failed; retrying in %s s", self.poll_seconds)
                    connection.close()
                    found = 0
                except Exception:
                    # A bug must not end publishing silently while the reminders go on: logged, retried.
                    logger.exception("publisher poll failed; retrying in %s s", self.poll_seconds)
                    found = 0
                if found < self.batch_size:
                    self.stop.wait(self.next_wake())
        finally:
            # This thread's own connection (Django opens one per thread).
            connection.close()
            logger.info("publisher stopped", extra={"published": self.published, "failed": self.failed})
