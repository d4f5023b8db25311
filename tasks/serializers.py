"""What a client may write to a task, validated strictly, and what it reads back."""

import copy
import difflib
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import Any

from django.db import models, transaction
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema_field, extend_schema_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from authbridge.models import User
from tasks.models import Priority, Tag, TagNames, Task


def max_length(model: type[models.Model], name: str) -> int:
    """A limit written once, on the model, and enforced from there by the API too."""
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field) and field.max_length is not None
    return field.max_length


TITLE_MAX_LENGTH = max_length(Task, "title")
DESCRIPTION_MAX_LENGTH = max_length(Task, "description")
TAG_MAX_LENGTH = max_length(Tag, "name")
MAX_TAGS_PER_TASK = 20
PRIORITY_NAMES: dict[int, str] = dict(Priority.choices)
PRIORITY_RANKS = {name: rank for rank, name in Priority.choices}


class StrictCharField(serializers.CharField):
    """Text must be a JSON string: a number is not a title."""

    def to_internal_value(self, data: object) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A JSON true or false; "yes", 1 and "true" are refused."""

    def to_internal_value(self, data: object) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


@extend_schema_field({"type": "string", "enum": list(PRIORITY_RANKS), "default": "medium"})
class PriorityField(serializers.Field):
    """One of the names, exactly: "High", 3 and null are refused. Stored as its rank."""

    default_error_messages = {"invalid": "Must be one of: low, medium, high."}

    def to_internal_value(self, data: object) -> int:
        if not isinstance(data, str) or data not in PRIORITY_RANKS:
            self.fail("invalid")
        return PRIORITY_RANKS[data]

    def to_representation(self, value: int) -> str:
        return PRIORITY_NAMES[value]


# RFC 3339's date-time with years 1900-9999: the schema declares it, so generated clients and fuzzers
# know it; parse_rfc3339 then checks the calendar and the range once moved to UTC.
RFC3339_PATTERN = (
    r"^(19\d\d|[2-9]\d\d\d)-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
    r"T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$"
)
RFC3339 = re.compile(RFC3339_PATTERN, re.ASCII)
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)


def parse_rfc3339(value: object) -> datetime | None:
    """An aware datetime in UTC from an RFC 3339 date-time with an offset; None for anything else."""
    if not isinstance(value, str) or not RFC3339.fullmatch(value):
        return None
    try:
        moment = datetime.fromisoformat(value).astimezone(UTC)
    except (ValueError, OverflowError):  # e.g. month 13, or past year 9999 once moved to UTC
        return None
    return moment if moment >= EARLIEST else None


DATETIME_HINT = (
    "Send an RFC 3339 date-time with an offset, between 1900-01-01 and 9999-12-31, "
    'e.g. "2026-12-01T17:00:00Z" or "2026-12-01T18:00:00+01:00".'
)


DATETIME_SCHEMA = {
    "type": "string",
    "format": "date-time",
    "example": "2026-12-01T17:00:00Z",
}


@extend_schema_field({**DATETIME_SCHEMA, "nullable": True})
class OffsetDateTimeField(serializers.Field):
    """RFC 3339 with an offset, or null; a naive time would be guessed in some zone, so it is refused."""

    default_error_messages = {"invalid": DATETIME_HINT}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_null=True, **kwargs)

    def to_internal_value(self, data: object) -> datetime:
        moment = parse_rfc3339(data)
        if moment is None:
            self.fail("invalid")
        return moment

    def to_representation(self, value: datetime | None) -> datetime | None:
        return value  # the renderer writes it as RFC 3339 in UTC, like every timestamp


def has_control_character(text: str) -> bool:
    """No tag has one: refused when written, matching nothing when filtered by."""
    return any(unicodedata.category(character) == "Cc" for character in text)


def clean_tag_name(name: object) -> str:
    if not isinstance(name, str):
        raise ValidationError("Each tag must be a string.")
    name = name.strip()
    if not 1 <= len(name) <= TAG_MAX_LENGTH:
        raise ValidationError(f"Each tag must be 1 to {TAG_MAX_LENGTH} characters long, once trimmed.")
    if has_control_character(name):
        raise ValidationError("Tags cannot contain control characters.")
    return name


@extend_schema_field(
    {
        "type": "array",
        "items": {"type": "string", "minLength": 1, "maxLength": TAG_MAX_LENGTH},
        "maxItems": MAX_TAGS_PER_TASK,
        "default": [],
        "description": (
            f"At most {MAX_TAGS_PER_TASK} names of 1 to {TAG_MAX_LENGTH} characters once trimmed, without "
            "control characters; names "
            "differing only in case are one tag, spelled as you first wrote it. Sent on PUT or PATCH, it "
            "replaces "
            "the list. Returned sorted case-insensitively."
        ),
        "example": ["Errands", "Home"],
    }
)
class TagNamesField(serializers.Field):
    """A list of tag names, trimmed, each case-insensitive name once (its first spelling)."""

    def to_internal_value(self, data: object) -> list[str]:
        if not isinstance(data, list):
            raise ValidationError("Must be an array of strings.")
        names: dict[str, str] = {}
        for name in map(clean_tag_name, data):
            names.setdefault(name.lower(), name)
        if len(names) > MAX_TAGS_PER_TASK:
            raise ValidationError(f"At most {MAX_TAGS_PER_TASK} tags per task.")
        return list(names.values())

    def to_representation(self, value: models.Manager[Tag]) -> list[str]:
        return sorted_names(tag.name for tag in value.all())


def sorted_names(names: Iterable[str]) -> list[str]:
    return sorted(names, key=lambda name: (name.lower(), name))


def tags_named(owner: User, names: list[str]) -> list[Tag]:
    """The owner's tags with these names, created where missing. Two requests creating the same new
    tag at once both get it: the loser's INSERT is skipped (ON CONFLICT DO NOTHING) on the case-
    insensitive unique constraint, and the SELECT after it sees the winner's committed row."""
    if not names:
        return []
    # Inserted in one order whatever the client's, so two requests adding [a, b] and [b, a] never
    # wait on each other's uncommitted rows in a deadlock.
    in_order = sorted(names, key=str.lower)
    Tag.objects.bulk_create([Tag(owner=owner, name=name) for name in in_order], ignore_conflicts=True)
    return list(Tag.objects.owned_by(owner).named(*names))


TASK_FIELDS = [
    "id",
    "title",
    "description",
    "completed",
    "completed_at",
    "priority",
    "due_at",
    "tags",
    "created_at",
    "updated_at",
]
# A task's own columns, as a list reads them with `.values()`; its tags come from one more query.
TASK_COLUMNS = [name for name in TASK_FIELDS if name != "tags"]
READ_ONLY_FIELDS = ["id", "completed_at", "created_at", "updated_at"]
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
        "created_at": values["created_at"],
        "updated_at": values["updated_at"],
    }


def task_rows(tasks: models.QuerySet[Task]) -> models.QuerySet[Task, dict[str, Any]]:
    """Tasks as the `.values()` rows represent_tasks takes: their columns and their tags' names, in
    one query (a list's rows are not model instances: building those cost more than the query)."""
    return tasks.annotate(tag_names=TagNames()).values(*TASK_COLUMNS, "tag_names")


def represent_tasks(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [represent_task(row, row["tag_names"]) for row in rows]


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


# Each serializer class's fields as ModelSerializer builds them: see TaskSerializer.get_fields.
BUILT_FIELDS: dict[type[serializers.ModelSerializer], dict[str, serializers.Field]] = {}


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A task",
            value={
                "id": 42,
                "title": "Renew passport",
                "description": "Photos first",
                "completed": False,
                "completed_at": None,
                "priority": "high",
                "due_at": "2026-12-01T17:00:00Z",
                "tags": ["Errands", "Paperwork"],
                "created_at": "2026-11-27T09:30:00Z",
                "updated_at": "2026-11-27T09:30:00Z",
            },
            response_only=True,
        ),
    ]
)
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

    class Meta:
        model = Task
        fields = TASK_FIELDS
        read_only_fields = READ_ONLY_FIELDS

    ignored_fields: Sequence[str] = ()
    # The tag names this serializer has just written, so that representing its task needs no query.
    written_tag_names: list[str] | None = None

    def get_fields(self) -> dict[str, serializers.Field]:
        """ModelSerializer builds every field from the model again for each serializer; they come out
        the same each time, so they are built once per class and each serializer gets its own copy.

        Shallow copies (16 µs for all ten, where deepcopy re-runs each field's __init__ in 46): the
        built fields are never bound, so a copy starts as a new field does, with its own attributes
        for bind() to set; what it shares (validators, error messages) DRF only reads after __init__."""
        if type(self) not in BUILT_FIELDS:
            BUILT_FIELDS[type(self)] = super().get_fields()
        return {name: copy.copy(field) for name, field in BUILT_FIELDS[type(self)].items()}

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, dict):
            self.check_unknown_fields(data)
        return super().to_internal_value(data)

    def check_unknown_fields(self, data: dict[str, Any]) -> None:
        unknown = sorted(name for name in data if name not in self.fields)
        if unknown and self.reject_unknown_fields:
            raise ValidationError({name: [unknown_field_message(name)] for name in unknown})
        self.ignored_fields = unknown

    def to_representation(self, instance: Task) -> dict[str, Any]:
        values = {name: getattr(instance, name) for name in TASK_COLUMNS}
        # The names just written, or those read with the task (TagNames), or else a query.
        tag_names = self.written_tag_names
        if tag_names is None:
            tag_names = getattr(instance, "tag_names", None)
        if tag_names is None:
            tag_names = [tag.name for tag in instance.tags.all()]
        return represent_task(values, tag_names)

    def create(self, validated_data: dict[str, Any]) -> Task:
        tag_names = validated_data.pop("tags", [])
        if validated_data.get("completed"):
            validated_data["completed_at"] = timezone.now()
        with together_if(bool(tag_names)):
            task = Task.objects.create(**validated_data)
            tags = tags_named(task.owner, tag_names)
            if tags:  # a new task has no tags to clear: set([]) would still query for them
                task.tags.set(tags)
        self.written_tag_names = [tag.name for tag in tags]
        return task

    def update(self, instance: Task, validated_data: dict[str, Any]) -> Task:
        """Task.write: an UPDATE, never Model.save() (which would INSERT the task again when a
        concurrent DELETE removed it after it was read), only of a version If-Match allows. The tags
        change in the same transaction as that version, so the task's ETag covers them too."""
        tag_names = validated_data.pop("tags", None)

        def changes_for(task: Task) -> dict[str, Any]:
            # Decided by the row as the write finds it, not by what this request read earlier.
            changes = dict(validated_data)
            if "completed" in changes and changes["completed"] != task.completed:
                changes["completed_at"] = timezone.now() if changes["completed"] else None
            return changes

        with together_if(tag_names is not None):
            instance.write(changes_for, versions=self.context.get("versions"))
            if tag_names is not None:
                tags = tags_named(instance.owner, tag_names)
                instance.tags.set(tags)
                self.written_tag_names = [tag.name for tag in tags]
        return instance


def together_if(writes_tags: bool) -> AbstractContextManager[Any]:
    """A transaction when a write changes a task's tags too, so the task and its tags commit together.
    A task written alone is one INSERT or UPDATE, atomic by itself: a transaction around it would
    only add BEGIN and COMMIT, two more round trips to the database."""
    return transaction.atomic() if writes_tags else nullcontext()


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
