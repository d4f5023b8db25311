"""The task serializers: what a client may write to a task, validated strictly by the fields of
tasks/fields.py, and the task it reads back (tasks/representation.py); the shapes of the stats."""

import difflib
import re
from collections.abc import Sequence
from typing import Any

from drf_spectacular.utils import OpenApiExample, PolymorphicProxySerializer, extend_schema_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from tasks.fields import (
    DATETIME_HINT,
    DESCRIPTION_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    OffsetDateTimeField,
    PriorityField,
    RecurrenceField,
    RepeatFromField,
    StrictBooleanField,
    StrictCharField,
    TagNamesField,
    TimeZoneField,
)
from tasks.models import RepeatFrom, Task
from tasks.recurrence import series_errors
from tasks.representation import TASK_COLUMNS, TASK_FIELDS, represent_task

READ_ONLY_FIELDS = ["id", "completed_at", "reminded_at", "next_occurrence", "created_at", "updated_at"]
# Names other todo apps give these fields, for the "did you mean" of an unknown field.
FIELD_ALIASES = {
    "due": "due_at",
    "due_date": "due_at",
    "deadline": "due_at",
    "category": "tags",
    "categories": "tags",
    "labels": "tags",
    "tag": "tags",
    "done": "completed",
    "is_completed": "completed",
    "status": "completed",
    "name": "title",
    "text": "title",
    "body": "description",
    "notes": "description",
}


def suggestion_for(name: str) -> str | None:
    """The task field a client most likely meant by an unknown one: dueDate → due_at."""
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower().replace("-", "_")
    if snake in TASK_FIELDS:
        return snake
    if snake in FIELD_ALIASES:
        return FIELD_ALIASES[snake]
    close = difflib.get_close_matches(snake, TASK_FIELDS, n=1, cutoff=0.75)
    return close[0] if close else None


def unknown_field_message(name: str) -> str:
    suggestion = suggestion_for(name)
    if suggestion is None:
        return "Unknown field."
    return f'Unknown field. Did you mean "{suggestion}"?'


# A weekly task with a reminder, as the API returns it: the schema's example, and the feed's.
TASK_EXAMPLE = {
    "id": 42,
    "title": "Renew passport",
    "description": "Photos first",
    "completed": False,
    "completed_at": None,
    "priority": "high",
    "due_at": "2026-12-07T08:00:00Z",
    "tags": ["Errands", "Paperwork"],
    "recurrence": "FREQ=WEEKLY;BYDAY=MO",
    "time_zone": "Europe/Berlin",
    "repeat_from": "due",
    "remind_at": "2026-12-07T07:30:00Z",
    "reminded_at": None,
    "next_occurrence": None,
    "created_at": "2026-11-27T09:30:00Z",
    "updated_at": "2026-11-27T09:30:00Z",
}


@extend_schema_serializer(examples=[OpenApiExample("A task", value=TASK_EXAMPLE, response_only=True)])
class TaskSerializer(serializers.ModelSerializer):
    """A task. A body field a task does not have is a 400 that names it (and the field probably
    meant); read-only fields (id, timestamps, completed_at) are ignored whatever their value, so a
    client may send back the object it read."""

    # The schema declares it too (additionalProperties: false, todo_api/schema.py).
    reject_unknown_fields = True

    title = StrictCharField(min_length=1, max_length=TITLE_MAX_LENGTH)
    description = StrictCharField(
        max_length=DESCRIPTION_MAX_LENGTH, allow_blank=True, required=False, trim_whitespace=False
    )
    completed = StrictBooleanField(required=False)
    completed_at = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="When `completed` last became true (server time); null while not completed.",
    )
    priority = PriorityField(required=False)
    due_at = OffsetDateTimeField(required=False, help_text=f"When the task is due, or null. {DATETIME_HINT}")
    tags = TagNamesField(required=False)
    recurrence = RecurrenceField(required=False)
    time_zone = TimeZoneField(required=False)
    repeat_from = RepeatFromField(
        required=False,
        help_text="`due`: the next occurrence is the series' first after the due date (or after the "
        "completion, when later). `completion`: INTERVAL days, weeks, months or years after the day "
        "it is completed, at the same local time.",
    )
    remind_at = OffsetDateTimeField(
        required=False,
        help_text="When to remind you, or null; returned in UTC. Moving it to another instant re-arms "
        f"the reminder. {DATETIME_HINT}",
    )
    reminded_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="When the reminder fired; null until it has."
    )
    next_occurrence = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        help_text="The id of the task created when this occurrence of a recurring task was completed.",
    )

    class Meta:
        model = Task
        fields = TASK_FIELDS
        read_only_fields = READ_ONLY_FIELDS

    ignored_fields: Sequence[str] = ()

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, dict):
            self.check_unknown_fields(data)
        return super().to_internal_value(data)

    def check_unknown_fields(self, data: dict[str, Any]) -> None:
        unknown = sorted(name for name in data if name not in self.fields)
        if unknown and self.reject_unknown_fields:
            raise ValidationError({name: [unknown_field_message(name)] for name in unknown})
        self.ignored_fields = unknown

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """The series as the write would leave it: what is sent, else what the task has."""

        def after_write(name: str) -> Any:
            return attrs[name] if name in attrs else getattr(self.instance, name, None)

        errors = series_errors(
            rule_text=after_write("recurrence"),
            due_at=after_write("due_at"),
            zone_name=after_write("time_zone") or "UTC",
            from_completion=after_write("repeat_from") == RepeatFrom.COMPLETION,
            clearing_due="due_at" in attrs and "recurrence" not in attrs,
        )
        if errors:
            raise ValidationError(errors)
        return attrs

    def to_representation(self, instance: Task) -> dict[str, Any]:
        values = {name: getattr(instance, name) for name in TASK_COLUMNS}
        # The names read with the task (TagNames) or just written (tasks/services.py), or else a query.
        tag_names = getattr(instance, "tag_names", None)
        if tag_names is None:
            tag_names = [tag.name for tag in instance.tags.all()]
        return represent_task(values, tag_names)


class CompatTaskSerializer(TaskSerializer):
    """A task on /api/{user_id}/tasks. Body fields a task does not have are ignored, since the
    frontends written for these routes send whole objects with their own extras; the response's
    X-Ignored-Fields header names them."""

    reject_unknown_fields = False


class TagCountSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The tag, spelled as its owner first wrote it.")
    count = serializers.IntegerField(help_text="How many of the caller's tasks carry it.")


class PriorityCountsSerializer(serializers.Serializer):
    low = serializers.IntegerField()
    medium = serializers.IntegerField()
    high = serializers.IntegerField()


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A dashboard",
            value={
                "total": 12,
                "completed": 5,
                "open": 7,
                "overdue": 2,
                "due_today": 1,
                "by_priority": {"low": 3, "medium": 6, "high": 3},
            },
        )
    ]
)
class StatsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    completed = serializers.IntegerField()
    open = serializers.IntegerField(help_text="Tasks not completed.")
    overdue = serializers.IntegerField(help_text="Open tasks whose `due_at` has passed.")
    due_today = serializers.IntegerField(
        help_text="Tasks (open or not) due during today in the `tz` time zone."
    )
    by_priority = PriorityCountsSerializer(help_text="All tasks, by priority.")


class UserStatsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    pending = serializers.IntegerField(help_text="Tasks not completed.")
    completed = serializers.IntegerField()


class UpsertChangeSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["upsert"], help_text="Put this task in your copy.")
    id = serializers.IntegerField(help_text="The task's `id`.")
    task = TaskSerializer(help_text="The task as it is now, as `GET /api/v1/tasks/{id}` returns it.")


class ReminderChangeSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=["reminder"], help_text="The task's reminder fired (`reminded_at`): tell the user."
    )
    id = serializers.IntegerField(help_text="The task's `id`.")
    task = TaskSerializer(help_text="The task as it is now; put it in your copy as for an upsert.")


class DeleteChangeSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["delete"], help_text="Remove this task from your copy.")
    id = serializers.IntegerField(help_text="The task's `id`.")


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Changes since your cursor",
            value={
                "changes": [
                    {
                        "kind": "upsert",
                        "id": 42,
                        "task": {
                            **TASK_EXAMPLE,
                            "completed": True,
                            "completed_at": "2026-12-07T08:15:00Z",
                            "reminded_at": "2026-12-07T07:30:01Z",
                            "next_occurrence": 43,
                            "updated_at": "2026-12-07T08:15:00Z",
                        },
                    },
                    {
                        "kind": "upsert",
                        "id": 43,
                        "task": {
                            **TASK_EXAMPLE,
                            "id": 43,
                            "due_at": "2026-12-14T08:00:00Z",
                            "remind_at": "2026-12-14T07:30:00Z",
                            "created_at": "2026-12-07T08:15:00Z",
                            "updated_at": "2026-12-07T08:15:00Z",
                        },
                    },
                    {"kind": "delete", "id": 17},
                ],
                "cursor": "WzcsMTAzLG51bGxd.Xq3ZJ6m1pQ0m0JZ8Lr5f3n9w2yQk1u4dVbT6sH7aE0c",
                "has_more": False,
            },
        )
    ]
)
class ChangePageSerializer(serializers.Serializer):
    changes = PolymorphicProxySerializer(
        component_name="Change",
        serializers={
            "upsert": UpsertChangeSerializer,
            "delete": DeleteChangeSerializer,
            "reminder": ReminderChangeSerializer,
        },
        resource_type_field_name="kind",
        many=True,
        help_text="Oldest first; apply them in order. A task's state appears once per page, followed "
        "by a `reminder` if its reminder fired. Ignore a `kind` you do not know: later versions may add "
        "kinds.",
    )
    cursor = serializers.CharField(
        help_text="Send it back as `cursor` for what changes next. Opaque; with nothing new it is the "
        "cursor you sent."
    )
    has_more = serializers.BooleanField(help_text="More changes wait: ask again now with `cursor`.")
