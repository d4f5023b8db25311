"""The one write path of tasks: every write of a task, and of the tags that change how tasks read.

Each function is one transaction that writes the rows, checks the If-Match versions, sets
`completed_at`, bumps `version` and records a Change for every task it touched, so a write that
commits has its change and one that rolls back has none. The API's views, the admin and management
commands call these; serializers only validate and represent.
"""

import copy
import functools
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime
from http import HTTPStatus
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.exceptions import APIException

from authbridge.models import User
from tasks.models import Change, RepeatFrom, Tag, Task
from tasks.recurrence import Occurrence, next_occurrence, parse_rule, shifted
from tasks.representation import represent_tasks, task_rows
from todo_api.logging import traceparent_var

# The versions of a task a write may change (an If-Match's), or None for any.
Versions = Collection[int] | None
# What a write sets on the row, decided from the row as the write finds it.
ChangesFor = Callable[[Task], dict[str, Any]]
# Rows per INSERT of changes: SQLite allows 32,766 parameters in a statement, PostgreSQL 65,535.
CHANGES_PER_STATEMENT = 500


class VersionMismatch(Exception):
    """The task's version is none of those the writer allowed (an If-Match that no longer holds)."""


def completion(was_completed: bool, completed: bool | None) -> dict[str, Any]:
    """`completed` and the `completed_at` that follows it, when the write changes `completed`:
    set when it becomes true, cleared when it becomes false, untouched otherwise."""
    if completed is None or completed == was_completed:
        return {}
    return {"completed": completed, "completed_at": timezone.now() if completed else None}


def action_of(written: dict[str, Any]) -> Change.Action:
    # `completed` is among what was written only when it changed (completion()).
    return Change.Action.COMPLETED if written.get("completed") is True else Change.Action.UPDATED


@transaction.atomic
def task_create(*, owner: User, tags: Sequence[str] = (), **fields: Any) -> Task:
    completed = fields.pop("completed", None)
    task = Task.objects.create(owner=owner, **fields, **completion(False, completed))
    task.tag_names = write_tags(task, tags, new=True)  # type: ignore[attr-defined]  # as TagNames names it
    record_changes([(task.owner_id, task.pk, Change.Action.CREATED)])
    return task


@transaction.atomic
def task_update(
    task: Task, *, versions: Versions = None, tags: Sequence[str] | None = None, **fields: Any
) -> Task:
    """Writes `fields` (and the tags, when given) to `task`, only at a version `versions` allows.

    A write the admin makes may give the task another owner: the first owner's feed then loses it
    and the new owner's gains it."""
    completed = fields.pop("completed", None)
    previous_owner = task.owner_id
    follow_up = FollowUp()
    written = write(
        task,
        lambda row: follow_up.changes(
            row, {**fields, **completion(row.completed, completed), **series_reset(row, fields)}
        ),
        versions,
    )
    if tags is not None:
        task.tag_names = write_tags(task, tags)  # type: ignore[attr-defined]  # as TagNames names it
    if task.owner_id != previous_owner:
        moved = [(previous_owner, Change.Action.DELETED), (task.owner_id, Change.Action.CREATED)]
        record_changes([(owner_id, task.pk, action) for owner_id, action in moved])
    else:
        record_changes([(task.owner_id, task.pk, action_of(written)), *follow_up.finish(task)])
    return task


@transaction.atomic
def task_toggle(task: Task, *, versions: Versions = None) -> Task:
    """Flips `completed` of the row as it is, so concurrent toggles lose no update; `completed_at`
    follows from the row's own old value, not from what this request read."""
    follow_up = FollowUp()
    written = write(
        task, lambda row: follow_up.changes(row, completion(row.completed, not row.completed)), versions
    )
    record_changes([(task.owner_id, task.pk, action_of(written)), *follow_up.finish(task)])
    return task


class CannotSkip(APIException):
    """The task is completed, does not repeat, or its series has ended: the API's 409 as it stands."""

    status_code = HTTPStatus.CONFLICT
    default_code = "cannot_skip"
    default_detail = (
        "Only an open recurring task whose series goes on, and whose next occurrence does not exist "
        "yet, can skip to it."
    )


@transaction.atomic
def task_skip(task: Task, *, versions: Versions = None) -> Task:
    """Moves an open recurring task to its next occurrence, the first after its current `due_at`,
    its reminder moving with it and re-armed."""

    def to_next_occurrence(row: Task) -> dict[str, Any]:
        # A reopened occurrence whose successor exists would land on the successor's date.
        if row.completed or row.recurrence is None or row.due_at is None or row.next_occurrence is not None:
            raise CannotSkip()
        following = successor_of(row, after=row.due_at)
        if following is None:
            raise CannotSkip()
        return {
            "due_at": following.due_at,
            "occurrence": following.number,
            "remind_at": shifted(row.remind_at, row.due_at, following.due_at),
            "reminded_at": None,
        }

    write(task, to_next_occurrence, versions)
    record_changes([(task.owner_id, task.pk, Change.Action.UPDATED)])
    return task


def series_reset(row: Task, fields: dict[str, Any]) -> dict[str, Any]:
    """A reminder moved to another instant is armed again; a new rule starts its series here."""
    reset: dict[str, Any] = {}
    if "remind_at" in fields and fields["remind_at"] != row.remind_at:
        reset["reminded_at"] = None
    if "recurrence" in fields and fields["recurrence"] != row.recurrence:
        reset["occurrence"] = 1
    return reset


def successor_of(task: Task, *, after: datetime) -> Occurrence | None:
    """The occurrence of `task`'s series that follows it, for a completion or skip at `after`."""
    assert task.recurrence is not None and task.due_at is not None  # the serializer's rule
    from_completion = task.repeat_from == RepeatFrom.COMPLETION
    return next_occurrence(
        parse_rule(task.recurrence),
        ZoneInfo(task.time_zone),
        due_at=task.due_at,
        number=task.occurrence,
        after=after if from_completion else max(after, task.due_at),
        from_completion=from_completion,
    )


# What a successor copies of the occurrence it follows, besides its tags.
SERIES_FIELDS = ("owner_id", "title", "description", "priority", "recurrence", "time_zone", "repeat_from")


class FollowUp:
    """The successor of a recurring occurrence a write completes, created as the write decides the
    row's changes, so the completing UPDATE also sets `next_occurrence`: one more INSERT in all.

    Once: only the write that turns `completed` true on the row as it is creates one, and
    `next_occurrence` stays set when the task is reopened and completed again. A write that loses
    its race runs again on the row as it now is; the successor of its first try is removed first.
    """

    def __init__(self) -> None:
        self.successor: Task | None = None

    def changes(self, row: Task, changes: dict[str, Any]) -> dict[str, Any]:
        if self.successor is not None:
            self.successor.delete()
            self.successor = None
        if changes.get("completed") is not True or row.next_occurrence is not None:
            return changes
        occurrence = copy.copy(row)  # the occurrence as this write leaves it
        for name, value in changes.items():
            setattr(occurrence, name, value)
        if occurrence.recurrence is None:
            return changes
        following = successor_of(occurrence, after=changes["completed_at"])
        if following is None:
            return changes
        self.successor = Task.objects.create(
            **{name: getattr(occurrence, name) for name in SERIES_FIELDS},
            occurrence=following.number,
            due_at=following.due_at,
            remind_at=shifted(occurrence.remind_at, occurrence.due_at, following.due_at),
        )
        return {**changes, "next_occurrence": self.successor.pk}

    def finish(self, task: Task) -> list[tuple[int, int, Change.Action]]:
        """Gives the successor the completed task's tags (none to read when the task was read with
        its tag names and has none); the change that records it."""
        if self.successor is None:
            return []
        tag_names = getattr(task, "tag_names", None)
        if tag_names is None or tag_names:
            self.successor.tags.add(*task.tags.all())
        return [(task.owner_id, self.successor.pk, Change.Action.CREATED)]


@transaction.atomic
def task_delete(task: Task, *, versions: Versions = None) -> None:
    """Deletes the task if its version is one of `versions`: the check and the delete hold the
    row's lock. A task someone else deleted first is deleted once, and recorded once."""
    if versions is not None:
        task.refresh_from_db(from_queryset=Task.objects.select_for_update())
        if task.version not in versions:
            raise VersionMismatch()
    task_id = task.pk
    deleted, _ = task.delete()  # the instance's own DELETE: no query to find the row again
    if deleted:
        record_changes([(task.owner_id, task_id, Change.Action.DELETED)])


@transaction.atomic
def tasks_delete(tasks: Iterable[Task]) -> None:
    for task in tasks:
        task_delete(task)


@transaction.atomic
def task_remind(task_id: int, remind_at: datetime, now: datetime) -> bool:
    """Fires the reminder of a task armed for `remind_at`, if it still is: a claim, not a timer. The
    conditional UPDATE lands only while the task is open, `remind_at` unchanged and the reminder not
    fired, so of any number of workers exactly one fires it; its change commits with it."""
    armed = Task.objects.filter(
        pk=task_id, remind_at=remind_at, remind_at__lte=now, reminded_at__isnull=True, completed=False
    )
    if not armed.update(reminded_at=now):  # and `version`
        return False
    owner_id = Task.objects.filter(pk=task_id).values_list("owner_id", flat=True).get()
    record_changes([(owner_id, task_id, Change.Action.REMINDED)])
    return True


@transaction.atomic
def tag_rename(tag: Tag) -> None:
    """Saves a tag under its new name. Every task carrying it now reads differently: each gets a new
    version (and so a new ETag) and a change."""
    tag.save()
    touch_tasks(tag.owner_id, tag.tasks.values_list("pk", flat=True))


@transaction.atomic
def tag_delete(tag: Tag) -> None:
    """Deletes a tag, which takes it off its tasks: each gets a new version and a change."""
    task_ids = list(tag.tasks.values_list("pk", flat=True))
    tag.delete()
    touch_tasks(tag.owner_id, task_ids)


@transaction.atomic
def tags_delete(tags: Iterable[Tag]) -> None:
    for tag in tags:
        tag_delete(tag)


def write(task: Task, changes_for: ChangesFor, versions: Versions) -> dict[str, Any]:
    """Writes `changes_for(task)` and a new `updated_at` to the row, only if its version is one of
    `versions` (any when None), else raises VersionMismatch and writes nothing; returns what it wrote.

    One compare-and-set UPDATE of the row as it was read: it lands only if no other write came in
    between, so the instance then is exactly the row and `version` names it, with no query to read
    it back. A lost race (rare) locks the row, reads it as it now is and writes again. A task
    deleted meanwhile raises DoesNotExist (a 404): an UPDATE, unlike Model.save(), never re-INSERTs
    it. Called inside the caller's transaction.
    """
    written = write_if_unchanged(task, changes_for, versions)
    if written is None:
        # SQLite runs IMMEDIATE transactions (settings.py): the database is locked instead.
        task.refresh_from_db(from_queryset=Task.objects.select_for_update())
        written = write_if_unchanged(task, changes_for, versions)
        assert written is not None, "under the row's lock the write cannot miss"
    return written


def write_if_unchanged(task: Task, changes_for: ChangesFor, versions: Versions) -> dict[str, Any] | None:
    if versions is not None and task.version not in versions:
        raise VersionMismatch()
    changes = {**changes_for(task), "updated_at": timezone.now(), "version": task.version + 1}
    if not Task.objects.filter(pk=task.pk, version=task.version).update(**changes):
        return None
    for name, value in changes.items():
        setattr(task, name, value)
    return changes


def write_tags(task: Task, names: Sequence[str], *, new: bool = False) -> list[str]:
    """Gives the task exactly the tags with these names, created where missing; returns their names
    as stored (each tag keeps its first spelling)."""
    tags = tags_named(task.owner_id, names)
    if tags or not new:  # a new task has no tags to clear: set([]) would still query for them
        task.tags.set(tags)
    return [tag.name for tag in tags]


def tags_named(owner_id: int, names: Sequence[str]) -> list[Tag]:
    """The owner's tags with these names, created where missing. Two requests creating the same new
    tag at once both get it: the loser's INSERT is skipped (ON CONFLICT DO NOTHING) on the case-
    insensitive unique constraint, and the SELECT after it sees the winner's committed row."""
    if not names:
        return []
    # Inserted in one order whatever the client's, so two requests adding [a, b] and [b, a] never
    # wait on each other's uncommitted rows in a deadlock.
    in_order = sorted(names, key=str.lower)
    Tag.objects.bulk_create([Tag(owner_id=owner_id, name=name) for name in in_order], ignore_conflicts=True)
    return list(Tag.objects.filter(owner_id=owner_id).named(*names))


def touch_tasks(owner_id: int, task_ids: Iterable[int]) -> None:
    """A new version and a change for each of these tasks of one owner, whose reading changed."""
    task_ids = sorted(task_ids)
    if task_ids:
        Task.objects.filter(pk__in=task_ids).update(updated_at=timezone.now())  # and `version`
        record_changes([(owner_id, task_id, Change.Action.UPDATED) for task_id in task_ids])


def record_changes(changes: Sequence[tuple[int, int, Change.Action]]) -> None:
    """Records (owner id, task id, action) changes in the caller's transaction, in one INSERT per
    CHANGES_PER_STATEMENT of them; with events on, each with its event, the task as the write left it.

    The INSERT first locks the owners' rows (on PostgreSQL; SQLite lets one writer in at a time), so
    a user's changes are numbered and committed one transaction at a time: every change of a user
    that is still to commit gets a higher id than every one already committed, and a feed cursor at
    the highest id it has seen never skips one. Callers record last, so the lock is held only for the
    COMMIT, and every transaction takes it after all its other locks (no deadlock with task rows).
    """
    lock = connection.ops.for_update_sql(no_key=True) if connection.features.has_select_for_update else ""
    recorded_at = connection.ops.adapt_datetimefield_value(timezone.now())
    event_field = Change._meta.get_field("event")
    prepared = functools.partial(event_field.get_db_prep_save, connection=connection)
    events = events_of(changes) if settings.EVENTS_ENABLED else {}
    for start in range(0, len(changes), CHANGES_PER_STATEMENT):
        batch = changes[start : start + CHANGES_PER_STATEMENT]
        owners = sorted({owner_id for owner_id, _, _ in batch})
        owner_list = ", ".join(["%s"] * len(owners))
        # Typed, so a column of NULLs is one too (PostgreSQL reads an untyped VALUES column as text).
        row = f"(CAST(%s AS bigint), CAST(%s AS bigint), %s, CAST(%s AS {event_field.db_type(connection)}))"
        # Only placeholders, column types and the models' own table names are put into the text.
        sql = (
            f"WITH owner AS (SELECT id FROM {User._meta.db_table} "  # noqa: S608
            f"WHERE id IN ({owner_list}) ORDER BY id {lock}) "
            f"INSERT INTO {Change._meta.db_table} (owner_id, task_id, action, event, recorded_at) "
            "SELECT change.column1, change.column2, change.column3, change.column4, %s "
            f"FROM (VALUES {', '.join([row] * len(batch))}) AS change JOIN owner ON owner.id = change.column1"
        )
        values = [
            value
            for owner_id, task_id, action in batch
            for value in (owner_id, task_id, action, prepared(events.get(task_id)))
        ]
        with connection.cursor() as cursor:
            cursor.execute(sql, [*owners, recorded_at, *values])


def events_of(changes: Sequence[tuple[int, int, Change.Action]]) -> dict[int, dict[str, Any]]:
    """The event of each change by task id: the task as this transaction leaves it (none once
    deleted), and the trace context of the request that wrote it."""
    task_ids = {task_id for _, task_id, _ in changes}
    tasks = {task["id"]: task for task in represent_tasks(task_rows(Task.objects.filter(pk__in=task_ids)))}
    trace = {"traceparent": traceparent} if (traceparent := traceparent_var.get()) else {}
    return {task_id: {"task": tasks.get(task_id), **trace} for task_id in task_ids}
