"""A task belongs to exactly one user; every view finds tasks (and tags) through
`owned_by`.

Code that already holds a task it was allowed to see (the serializer's UPDATE, the toggle) and code
that is not about one user (readiness, the admin) uses `Task.objects` directly.
"""

import functools
import json
import operator
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any, Self

from django.conf import settings
from django.db import models, transaction
from django.db.models.functions import Lower
from django.db.models.signals import pre_delete
from django.dispatch import receiver
from django.utils import timezone

from authbridge.models import User


class VersionMismatch(Exception):
    """The task's version is none of those the writer allowed (an If-Match that no longer holds)."""


class Priority(models.IntegerChoices):
    """Stored as a rank, so ordering by priority is low < medium < high and indexes stay small."""

    LOW = 1, "low"
    MEDIUM = 2, "medium"
    HIGH = 3, "high"


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

    def save(self, *args: Any, **kwargs: Any) -> None:
        renamed = not self._state.adding
        super().save(*args, **kwargs)
        if renamed:
            self.touch_tasks()

    def touch_tasks(self) -> None:
        """A renamed or deleted tag changes how every task carrying it reads: each gets a new version,
        and so a new ETag (TaskQuerySet.update bumps it)."""
        self.tasks.update(updated_at=timezone.now())


@receiver(pre_delete, sender=Tag)
def _tasks_lose_a_tag(sender: type[Tag], instance: Tag, **kwargs: Any) -> None:
    # Deleted one by one or in bulk (the admin's action): pre_delete is sent for each.
    instance.touch_tasks()


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


# What Task.write sets on the row: field name to new value, from the task as the write finds it.
ChangesFor = Callable[["Task"], dict[str, Any]]


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

    objects = TaskQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-created_at", "-id"], name="task_owner_created_idx"),
            models.Index(fields=["owner", "completed"], name="task_owner_completed_idx"),
            # due_after/due_before, overdue and has_due (see docs/performance.md for why only this one).
            models.Index(fields=["owner", "due_at"], name="task_owner_due_idx"),
        ]

    def __str__(self) -> str:
        return self.title

    def save(self, *args: Any, **kwargs: Any) -> None:
        """A save of an existing task (the admin's) bumps `version` in its own UPDATE."""
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

    def write(self, changes_for: ChangesFor, *, versions: Collection[int] | None = None) -> None:
        """Writes `changes_for(task)` and a new `updated_at` to the row, only if its version is one of
        `versions` (any when None), else raises VersionMismatch and writes nothing.

        One compare-and-set UPDATE of the row as it was read: it lands only if no other write came in
        between, so the instance then is exactly the row and `version` names it, with no query to read
        it back. A lost race (rare) locks the row, reads it as it now is and writes again. A task
        deleted meanwhile raises DoesNotExist (a 404): an UPDATE, unlike Model.save(), never
        re-INSERTs it.
        """
        if not self._write_if_unchanged(changes_for, versions):
            with transaction.atomic():
                # SQLite runs IMMEDIATE transactions (settings.py): the database is locked instead.
                self.refresh_from_db(from_queryset=Task.objects.select_for_update())
                self._write_if_unchanged(changes_for, versions)  # under the lock it cannot miss

    def _write_if_unchanged(self, changes_for: ChangesFor, versions: Collection[int] | None) -> bool:
        if versions is not None and self.version not in versions:
            raise VersionMismatch()
        changes = {**changes_for(self), "updated_at": timezone.now(), "version": self.version + 1}
        if not Task.objects.filter(pk=self.pk, version=self.version).update(**changes):
            return False
        for name, value in changes.items():
            setattr(self, name, value)
        return True

    def delete_if(self, *, versions: Collection[int] | None = None) -> tuple[int, dict[str, int]]:
        """Deletes the task if its version is one of `versions` (any when None), else raises
        VersionMismatch; the check and the delete hold the row's lock."""
        if versions is None:
            return self.delete()
        with transaction.atomic():
            self.refresh_from_db(from_queryset=Task.objects.select_for_update())
            if self.version not in versions:
                raise VersionMismatch()
            return self.delete()

    def toggle_completed(self, *, versions: Collection[int] | None = None) -> None:
        """Flips `completed` of the row as it is, so concurrent toggles lose no update; `completed_at`
        follows from the row's own old value, not from what this request read."""
        self.write(
            lambda task: {
                "completed": not task.completed,
                "completed_at": None if task.completed else timezone.now(),
            },
            versions=versions,
        )


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
