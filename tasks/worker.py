"""The reminder worker's loop: every poll one indexed query for armed reminders that have come, then
the claim of each (services.task_remind), which fires it once however many workers run."""

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from django.db import DatabaseError, connection
from django.db.models import QuerySet
from django.utils import timezone

from tasks import services
from tasks.models import Task
from todo_api.metrics import REMINDER_DELAY, REMINDERS_FIRED

logger = logging.getLogger("tasks.worker")

# Reminders claimed per query. A full batch is followed by the next query at once, so a backlog (after
# downtime) drains without waiting a poll interval between batches.
BATCH_SIZE = 100

Clock = Callable[[], datetime]


def due_reminders_query(
    now: datetime, limit: int = BATCH_SIZE
) -> QuerySet[Task, tuple[int, datetime | None]]:
    """(task id, remind_at) of the armed reminders due by `now`, oldest first: a range scan of the
    partial index task_reminder_armed_idx, whose condition the filters repeat so both databases use it."""
    armed = Task.objects.filter(
        remind_at__isnull=False, reminded_at__isnull=True, completed=False, remind_at__lte=now
    )
    return armed.order_by("remind_at").values_list("pk", "remind_at")[:limit]


def due_reminders(now: datetime, limit: int = BATCH_SIZE) -> list[tuple[int, datetime]]:
    # The query leaves out null remind_at; the test only tells the type checker.
    return [(task_id, remind_at) for task_id, remind_at in due_reminders_query(now, limit) if remind_at]


class ReminderWorker:
    """Polls every `poll_seconds` until `stop` is set; `clock` is the time reminders are fired at."""

    def __init__(
        self,
        *,
        poll_seconds: float,
        batch_size: int = BATCH_SIZE,
        clock: Clock = timezone.now,
        stop: threading.Event | None = None,
    ) -> None:
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.clock = clock
        self.stop = stop or threading.Event()
        self.fired = 0

    def poll(self) -> int:
        """One query, then a claim per due reminder until the batch is done or `stop` is set. The
        number of reminders the query found (a full batch means more may be waiting)."""
        due = due_reminders(self.clock(), self.batch_size)
        for task_id, remind_at in due:
            if self.stop.is_set():
                break
            # The time of the claim, not of the query: reminded_at and the lateness say when it fired.
            now = self.clock()
            if services.task_remind(task_id, remind_at, now):
                self.fired += 1
                REMINDERS_FIRED.inc()
                REMINDER_DELAY.observe((now - remind_at).total_seconds())
                late_ms = round((now - remind_at).total_seconds() * 1000)
                logger.info(
                    "reminder fired for task %s, %s ms late",
                    task_id,
                    late_ms,
                    extra={"task_id": task_id, "remind_at": remind_at.isoformat(), "late_ms": late_ms},
                )
        return len(due)

    def run(self) -> None:
        logger.info(
            "worker started: polling every %s s on %s",
            self.poll_seconds,
            connection.vendor,
            extra={
                "poll_seconds": self.poll_seconds,
                "database": connection.vendor,
                "batch": self.batch_size,
            },
        )
        while not self.stop.is_set():
            try:
                found = self.poll()
            except DatabaseError:
                # The database is down or dropped the connection (Neon suspends idle computes): a
                # fresh one is opened by the next poll. Nothing half-done stays: each claim is one
                # transaction.
                logger.exception("poll failed; retrying in %s s", self.poll_seconds)
                connection.close()
                found = 0
            if found < self.batch_size:
                self.stop.wait(self.poll_seconds)
        logger.info("worker stopped", extra={"fired": self.fired})
