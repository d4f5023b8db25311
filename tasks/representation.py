"""How a task reads: its JSON shape, built from its columns and its tags' names."""

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import models

from tasks.fields import PRIORITY_NAMES
from tasks.models import TagNames, Task

TASK_FIELDS = [
    "id",
    "title",
    "description",
    "completed",
    "completed_at",
    "priority",
    "due_at",
    "tags",
    "recurrence",
    "time_zone",
    "repeat_from",
    "remind_at",
    "reminded_at",
    "next_occurrence",
    "created_at",
    "updated_at",
]
# A task's own columns, as a list reads them with `.values()`; its tags' names come in the same row,
# from the TagNames annotation (task_rows).
TASK_COLUMNS = [name for name in TASK_FIELDS if name != "tags"]


def sorted_names(names: Iterable[str]) -> list[str]:
    return sorted(names, key=lambda name: (name.lower(), name))


def represent_task(values: Mapping[str, Any], tag_names: Iterable[str]) -> dict[str, Any]:
    """A task's JSON shape from a dict of its TASK_COLUMNS: lists build it from `.values()` rows
    directly, because DRF's per-field serialization costs far more than the query. Timestamps stay
    datetimes: the renderer (todo_api/renderers.py) writes them in C, as RFC 3339 in UTC."""
    return {
        "id": values["id"],
        "title": values["title"],
        "description": values["description"],
        "completed": values["completed"],
        "completed_at": values["completed_at"],
        "priority": PRIORITY_NAMES[values["priority"]],
        "due_at": values["due_at"],
        "tags": sorted_names(tag_names),
        "recurrence": values["recurrence"],
        "time_zone": values["time_zone"],
        "repeat_from": values["repeat_from"],
        "remind_at": values["remind_at"],
        "reminded_at": values["reminded_at"],
        "next_occurrence": values["next_occurrence"],
        "created_at": values["created_at"],
        "updated_at": values["updated_at"],
    }


def task_rows(tasks: models.QuerySet[Task]) -> models.QuerySet[Task, dict[str, Any]]:
    """Tasks as the `.values()` rows represent_tasks takes: their columns and their tags' names, in
    one query (a list's rows are not model instances: building those cost more than the query)."""
    return tasks.annotate(tag_names=TagNames()).values(*TASK_COLUMNS, "tag_names")


def represent_tasks(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [represent_task(row, row["tag_names"]) for row in rows]
