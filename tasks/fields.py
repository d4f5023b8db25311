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
from todo_api.schema import WHITESPACE


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


# RFC 3339's date-time with a written year from 1900 to 9999 and a real calendar date (February 29
# only in leap years), exactly what parse_rfc3339 accepts: the schema declares it, so generated clients
# and fuzzers know it. On 9999-12-31 the offset is Z, +hh:mm or -00:00: a time west of UTC on that day
# could fall past the year 9999 once moved to UTC, past what a datetime holds.
_YEAR = r"(?:19[0-9][0-9]|[2-8][0-9]{3}|9[0-8][0-9][0-9]|99[0-8][0-9]|999[0-8])"  # 1900-9998
_DAYS_31 = r"(?:0[1-9]|[12][0-9]|3[01])"
_DAYS_30 = r"(?:0[1-9]|[12][0-9]|30)"
_FEBRUARY = r"02-(?:0[1-9]|1[0-9]|2[0-8])"
_MONTH_DAY = rf"(?:(?:0[13578]|1[02])-{_DAYS_31}|(?:0[469]|11)-{_DAYS_30}|{_FEBRUARY})"
_LAST_YEAR_MONTH_DAY = rf"(?:(?:0[13578]|10)-{_DAYS_31}|(?:0[469]|11)-{_DAYS_30}|{_FEBRUARY}|12-{_DAYS_30})"
_LEAP_DAY = r"(?:(?:19|[2-9][0-9])(?:0[48]|[2468][048]|[13579][26])|(?:[2468][048]|[3579][26])00)-02-29"
_TIME = r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?"
_HOURS_MINUTES = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]"
RFC3339_PATTERN = (
    rf"^(?:(?:{_YEAR}-{_MONTH_DAY}|{_LEAP_DAY}|9999-{_LAST_YEAR_MONTH_DAY}){_TIME}(?:Z|[+-]{_HOURS_MINUTES})"
    rf"|9999-12-31{_TIME}(?:Z|\+{_HOURS_MINUTES}|-00:00))$"
)
RFC3339 = re.compile(RFC3339_PATTERN, re.ASCII)


def parse_rfc3339(value: object) -> datetime | None:
    """An aware datetime in UTC from an RFC 3339 date-time with an offset; None for anything else."""
    if not isinstance(value, str) or not RFC3339.fullmatch(value):
        return None
    try:
        return datetime.fromisoformat(value).astimezone(UTC)
    except (ValueError, OverflowError):  # the pattern rules these out; kept in case it is loosened
        return None


DATETIME_HINT = (
    "Send an RFC 3339 date-time with an offset and a year from 1900 to 9999 as written, "
    'e.g. "2026-12-01T17:00:00Z" or "2026-12-01T18:00:00+01:00"; on 9999-12-31 the offset is `Z`, '
    "`+hh:mm` or `-00:00`."
)


DATETIME_SCHEMA = {
    "type": "string",
    "format": "date-time",
    "pattern": RFC3339_PATTERN,
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


def any_case(word: str) -> str:
    """`word` in either case, as str.upper() reads it (U+0131 is I, U+017F is S): ECMA-262 has no (?i)."""
    extra = {"I": "\\u0131", "S": "\\u017f"}
    return "".join(f"[{c}{c.lower()}{extra.get(c, '')}]" if c.isalpha() else c for c in word)


# The grammar parse_rule takes, part by part; which parts go together, each once, is said in words.
_ONE_TO_1000 = r"(?:0{0,3}[1-9]|0{0,2}[1-9][0-9]|0?[1-9][0-9][0-9]|1000)"
_WEEKDAY = "(?:" + "|".join(map(any_case, ("MO", "TU", "WE", "TH", "FR", "SA", "SU"))) + ")"
_BYDAY_ITEM = rf"(?:[+-]?(?:0?[1-9]|[1-4][0-9]|5[0-3]))?{_WEEKDAY}"
_MONTH_DAY_ITEM = r"-?(?:0?[1-9]|[12][0-9]|3[01])"
_MONTH_ITEM = r"(?:0?[1-9]|1[0-2])"
_UNTIL = (
    rf"[0-9]{{4}}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01]){any_case('T')}(?:[01][0-9]|2[0-3])[0-5][0-9][0-5][0-9]"
    + any_case("Z")
)
_RULE_PART = (
    "(?:"
    + "|".join(
        (
            any_case("FREQ=")
            + "(?:"
            + "|".join(map(any_case, ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")))
            + ")",
            any_case("INTERVAL=") + _ONE_TO_1000,
            any_case("BYDAY=") + rf"{_BYDAY_ITEM}(?:,{_BYDAY_ITEM})*",
            any_case("BYMONTHDAY=") + rf"{_MONTH_DAY_ITEM}(?:,{_MONTH_DAY_ITEM})*",
            any_case("BYMONTH=") + rf"{_MONTH_ITEM}(?:,{_MONTH_ITEM})*",
            any_case("COUNT=") + _ONE_TO_1000,
            any_case("UNTIL=") + _UNTIL,
        )
    )
    + ")"
)
RULE_PATTERN = rf"^[{WHITESPACE}]*(?:{any_case('RRULE:')})?{_RULE_PART}(?:;{_RULE_PART})*[{WHITESPACE}]*$"


@extend_schema_field(
    {
        "type": "string",
        "nullable": True,
        "maxLength": MAX_RULE_LENGTH,
        "pattern": RULE_PATTERN,
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


# Unicode's control characters (category Cc): U+0000-U+001F and U+007F-U+009F.
CONTROL = r"\u0000-\u001f\u007f-\u009f"
# A tag as clean_tag_name takes it: whitespace either side, then 1 to TAG_MAX_LENGTH characters without
# a control character that begin and end with one that is not whitespace.
_TAG_EDGE = rf"[^{CONTROL}{WHITESPACE}]"
TAG_NAME_PATTERN = (
    rf"^[{WHITESPACE}]*(?:{_TAG_EDGE}|{_TAG_EDGE}[^{CONTROL}]{{0,{TAG_MAX_LENGTH - 2}}}{_TAG_EDGE})"
    rf"[{WHITESPACE}]*$"
)
TAG_NAME_SCHEMA = {"type": "string", "minLength": 1, "pattern": TAG_NAME_PATTERN}


@extend_schema_field(
    {
        "type": "array",
        "items": TAG_NAME_SCHEMA,
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
