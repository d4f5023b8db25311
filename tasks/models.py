"""A task belongs to exactly one user; every view finds tasks (and tags) through
`owned_by`. Every write of a task goes through tasks/services.py, which records it as a Change.

Code that already holds a task it was allowed to see (the services) and code that is not about one
user (readiness, the admin) uses `Task.objects` directly.
"""

import functools
import json
import operator
from datetime import datetime
from typing import Any, Self

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from rest_framework.utils.encoders import JSONEncoder

from authbridge.models import User


class Priority(models.IntegerChoices):
    """Stored as a rank, so ordering by priority is low < medium < high and indexes stay small."""

    LOW = 1, "low"
    MEDIUM = 2, "medium"
    HIGH = 3, "high"


class RepeatFrom(models.TextChoices):
    DUE = "due"
    COMPLETION = "completion"


class TagQuerySet(models.QuerySet["Tag"]):
    def owned_by(self, user: User) -> Self:
        """A user's tags are theirs alone, as their tasks are."""
        return self.filter(owner=user)

    def named(self, *names: str) -> Self:
        """The tags with these names in any case, compared with the database's lower(), as the
        unique constraint is: Unicode-aware on PostgreSQL, ASCII-only on SQLite."""
        matches = [models.Q(name_key=Lower(models.Value(name))) for name in names]
        return self.alias(name_key=Lower("name")).filter(functools.reduce(operator.or_, matches))


class Tag(models.Model):
    """A user's label for tasks. Its identity is the name in any case; it keeps the first spelling used."""

    # No index of its own: the unique constraint's index starts with the owner.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tags", db_index=False
    )
    name = models.CharField(max_length=50)

    objects = TagQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint("owner", Lower("name"), name="tag_owner_name_ci_unique")]

    def __str__(self) -> str:
        return self.name


class TagNames(models.Subquery):
    """The names of a task's tags as a list, read in the task's own row rather than by a query of
    their own: an array on PostgreSQL, a JSON array on SQLite. Annotated as `tag_names`, they are
    the tags as they were when the row was read."""

    template = "ARRAY(%(subquery)s)"

    def __init__(self) -> None:
        names = Tag.objects.filter(tasks=models.OuterRef("pk")).values("name")
        # A list, which no model field describes: convert_value gives it its Python shape.
        super().__init__(names, output_field=models.Field())

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> tuple[str, Any]:
        template = "(SELECT json_group_array(name) FROM (%(subquery)s))"
        return self.as_sql(compiler, connection, template=template, **extra_context)

    def convert_value(self, value: list[str] | str, expression: Any, connection: Any) -> list[str]:
        return json.loads(value) if isinstance(value, str) else value


class TaskQuerySet(models.QuerySet["Task"]):
    def owned_by(self, user: User) -> Self:
        """The ownership rule: a user sees and changes their own tasks, nobody else's."""
        return self.filter(owner=user)

    def update(self, **changes: Any) -> int:
        """Every UPDATE of a task bumps its `version`, the ETag clients send back in If-Match."""
        changes.setdefault("version", models.F("version") + 1)
        return super().update(**changes)


def overdue_at(now: datetime) -> models.Q:
    """The one rule for "overdue", read by the list filter, the stats and the admin: open, and due
    before `now`."""
    return models.Q(completed=False, due_at__lt=now)


class Task(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tasks")
    title = models.CharField(max_length=200)
    description = models.TextField(max_length=1000, blank=True, default="")
    completed = models.BooleanField(default=False)
    # Set by the server when `completed` becomes true, cleared when it becomes false.
    completed_at = models.DateTimeField(null=True, blank=True, editable=False)
    # db_default: adding the column to a live table is a catalog change on PostgreSQL, not a rewrite.
    # A plain SmallIntegerField, not Positive...: that one's CHECK would scan the table when added.
    priority = models.SmallIntegerField(choices=Priority, default=Priority.MEDIUM, db_default=Priority.MEDIUM)
    due_at = models.DateTimeField(null=True, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="tasks")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # One more on every write (save, QuerySet.update, write): the task's ETag is built from it. The
    # database default serves rows inserted with SQL (bench/run.py seeds them so).
    version = models.PositiveIntegerField(default=1, db_default=1, editable=False)
    # A recurring task: an RFC 5545 RRULE (tasks/recurrence.py), expanded in `time_zone` from `due_at`
    # or from the completion (`repeat_from`). Completing an occurrence creates its successor once.
    # Null, not "", when a task does not repeat: the API's value, and what `recurring` filters on.
    recurrence = models.CharField(max_length=500, null=True, blank=True)  # noqa: DJ001
    time_zone = models.CharField(max_length=64, default="UTC", db_default="UTC")
    repeat_from = models.CharField(
        max_length=10, choices=RepeatFrom, default=RepeatFrom.DUE, db_default=RepeatFrom.DUE
    )
    # Which occurrence of its series this is (1 for the first): what the rule's COUNT counts.
    occurrence = models.PositiveIntegerField(default=1, db_default=1, editable=False)
    next_occurrence = models.BigIntegerField(null=True, blank=True, editable=False)
    remind_at = models.DateTimeField(null=True, blank=True)
    # Set by the worker when the reminder fires; cleared when `remind_at` moves.
    reminded_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = TaskQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-created_at", "-id"], name="task_owner_created_idx"),
            models.Index(fields=["owner", "completed"], name="task_owner_completed_idx"),
            # due_after/due_before, overdue and has_due (see docs/performance.md for why only this one).
            models.Index(fields=["owner", "due_at"], name="task_owner_due_idx"),
            # The worker's one query per poll: armed reminders, by when they are due.
            models.Index(
                fields=["remind_at"],
                name="task_reminder_armed_idx",
                condition=models.Q(remind_at__isnull=False, reminded_at__isnull=True, completed=False),
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def save(self, *args: Any, **kwargs: Any) -> None:
        """A save of an existing task bumps `version` in its own UPDATE, as TaskQuerySet.update does:
        the services never save a task so, but a shell or a data migration might."""
        if self._state.adding:
            return super().save(*args, **kwargs)
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "version", "updated_at"}
        self.version = models.F("version") + 1
        super().save(*args, **kwargs)
        self.refresh_from_db(fields=["version"])

    def refresh_from_db(self, *args: Any, **kwargs: Any) -> None:
        super().refresh_from_db(*args, **kwargs)
        # Read with the row before: the tags may have changed since (TagNames).
        self.__dict__.pop("tag_names", None)


class Change(models.Model):
    """One committed write of one task, as its owner's change feed (GET /api/v1/changes) reads it and
    as the event publisher does: who, which task, what happened, in the owner's order.

    `id` is the position: tasks/services.py numbers a user's changes under a lock on the user's row,
    held until the write commits, so a user's changes commit in the order of their ids and a cursor
    never passes one that may still commit below it. The task's state is read at poll time (a task is
    not a foreign key: its changes outlive it). Deleting the user deletes their feed.
    """

    class Action(models.TextChoices):
        CREATED = "created"
        UPDATED = "updated"
        COMPLETED = "completed"  # the write that turned `completed` true
        DELETED = "deleted"
        REMINDED = "reminded"  # the worker fired the task's reminder
        # Left by purge_changes where it removed older records: a cursor before it has lost changes.
        PURGED = "purged"

    id = models.BigAutoField(primary_key=True)
    # The (owner, id) index serves the feed; no index of the owner's own.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    task_id = models.BigIntegerField()
    action = models.CharField(max_length=16, choices=Action)
    recorded_at = models.DateTimeField()
    # The event it becomes (docs/events.md), fixed at the write so a retry sends the same one: the
    # task as it then was ({"task": ..., "traceparent": ...}). Null when events are off (EVENTS_ENABLED).
    # DRF's encoder: timestamps as the API writes them (RFC 3339 in UTC, microseconds kept).
    event = models.JSONField(null=True, blank=True, encoder=JSONEncoder)
    # When the worker's publisher had a 2xx from Dapr for it.
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["owner", "id"], name="change_owner_position_idx"),
            models.Index(fields=["recorded_at"], name="change_recorded_idx"),
            # The publisher's queue: events not yet out, in order.
            models.Index(
                fields=["id"],
                name="change_unpublished_idx",
                condition=models.Q(event__isnull=False, published_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} task {self.task_id}"


class IdempotencyKey(models.Model):
    """A create remembered under the client's Idempotency-Key, so a retry replays its response."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    # What the request asked for (its route and JSON body): the same key with another request is a 422.
    fingerprint = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField()
    # The JSON text as first sent, so a replay is the same document, key order included.
    body = models.TextField()
    headers = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "key"], name="idempotency_key_unique")]
        indexes = [models.Index(fields=["created_at"], name="idempotency_key_created_idx")]

    def __str__(self) -> str:
        return self.key
