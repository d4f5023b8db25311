"""The task's own DRF fields: what a client writes, parsed strictly. They only parse: a task's JSON
is built whole by represent_task (tasks/representation.py), never field by field."""

import functools
import re
import unicodedata
from datetime import UTC, datetime
from typing import Any
from zoneinfo import available_timezones

from django.db import models
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from tasks.models import Priority, RepeatFrom, Tag, Task
from tasks.recurrence import MAX_RULE_LENGTH, RuleError, parse_rule


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


@functools.cache
def time_zone_names() -> frozenset[str]:
    # Only names from the zone database: ZoneInfo() alone would also open other files under its path.
    return frozenset(available_timezones())


@extend_schema_field(
    {
        "type": "string",
        "enum": sorted(time_zone_names()),
        "default": "UTC",
        "example": "Europe/Berlin",
        "description": "The IANA time zone the series is computed in, so a 09:00 task stays at 09:00 local "
        "time across DST changes.",
    }
)
class TimeZoneField(serializers.Field):
    default_error_messages = {"invalid": "Unknown time zone. Send an IANA name, e.g. Europe/Paris."}

    def to_internal_value(self, data: object) -> str:
        if not isinstance(data, str) or data not in time_zone_names():
            self.fail("invalid")
        return data


@extend_schema_field({"type": "string", "enum": list(RepeatFrom), "default": RepeatFrom.DUE})
class RepeatFromField(serializers.Field):
    default_error_messages = {"invalid": "Must be one of: due, completion."}

    def to_internal_value(self, data: object) -> str:
        if not isinstance(data, str) or data not in RepeatFrom.values:
            self.fail("invalid")
        return data


@extend_schema_field(
    {
        "type": "string",
        "nullable": True,
        "maxLength": MAX_RULE_LENGTH,
        "example": "FREQ=WEEKLY;BYDAY=MO,WE",
        "description": "An RFC 5545 RRULE value, with or without `RRULE:` (returned without it, upper-case). "
        "Parts: `FREQ` (DAILY, WEEKLY, MONTHLY, YEARLY), `INTERVAL` (1-1000), `BYDAY` (`MO,WE`; with "
        "MONTHLY or YEARLY an ordinal like `-1FR` or `2TU`), `BYMONTHDAY` (1-31, -1 to -31), `BYMONTH` "
        "(1-12), and `COUNT` (1-1000) or `UNTIL` (`YYYYMMDDTHHMMSSZ`), not both. Needs `due_at`; `UNTIL` "
        "not before it. With `repeat_from: completion` only FREQ, INTERVAL, COUNT and UNTIL. Completing "
        "an occurrence creates the next one (`next_occurrence`).",
    }
)
class RecurrenceField(serializers.Field):
    """A rule the API can expand (tasks/recurrence.py), or null; the error names the part at fault."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_null=True, **kwargs)

    def to_internal_value(self, data: object) -> str:
        if not isinstance(data, str):
            raise ValidationError("Must be an RRULE string, e.g. FREQ=WEEKLY;BYDAY=MO, or null.")
        try:
            return parse_rule(data).text
        except RuleError as error:
            raise ValidationError(str(error)) from None


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
