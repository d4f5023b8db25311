"""Recurring tasks: the RFC 5545 RRULE subset a task may repeat by, and the next occurrence of a series.

Series are expanded by python-dateutil in the task's own time zone, in wall-clock time, so "every day
at 09:00 Europe/Berlin" stays 09:00 across DST changes. A wall-clock time the zone skips or repeats
takes the offset before the change (zoneinfo's fold=0).
"""

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta
from dateutil.rrule import DAILY, MONTHLY, WEEKLY, YEARLY, rrule, weekday

MAX_RULE_LENGTH = 500
MAX_INTERVAL = 1000
MAX_COUNT = 1000
# rrule's frequency constants, as its type stubs spell them.
Frequency = Literal[0, 1, 2, 3, 4, 5, 6]
FREQUENCIES: dict[str, Frequency] = {"DAILY": DAILY, "WEEKLY": WEEKLY, "MONTHLY": MONTHLY, "YEARLY": YEARLY}
PARTS = ("FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "BYMONTH", "COUNT", "UNTIL")
# With repeat_from "completion" the next occurrence is INTERVAL units after the completion: no BY rules.
COMPLETION_PARTS = ("FREQ", "INTERVAL", "COUNT", "UNTIL")
WEEKDAYS = {name: weekday(index) for index, name in enumerate(("MO", "TU", "WE", "TH", "FR", "SA", "SU"))}
# An ordinal weekday ("2TU", "-1FR"): in a month -5..5, in a year -53..53, never 0.
BYDAY_ITEM = re.compile(r"([+-]?)([0-9]{1,2})?(MO|TU|WE|TH|FR|SA|SU)", re.ASCII)
UNTIL_FORMAT = re.compile(r"[0-9]{8}T[0-9]{6}Z", re.ASCII)
# What one INTERVAL is, for repeat_from "completion".
STEPS = {
    DAILY: relativedelta(days=1),
    WEEKLY: relativedelta(weeks=1),
    MONTHLY: relativedelta(months=1),
    YEARLY: relativedelta(years=1),
}


# The most days each month can have (February in a leap year).
MONTH_LENGTHS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class RuleError(ValueError):
    """A rule the API does not take; the message names the part."""


@dataclass(frozen=True)
class Rule:
    text: str  # as stored and returned: without "RRULE:", parts upper-case, in the client's order
    freq: Frequency
    interval: int = 1
    byweekday: tuple[weekday, ...] | None = None
    bymonthday: tuple[int, ...] | None = None
    bymonth: tuple[int, ...] | None = None
    count: int | None = None
    until: datetime | None = None  # aware, UTC

    @property
    def parts(self) -> set[str]:
        return {part.partition("=")[0] for part in self.text.split(";")}


def parse_rule(text: str) -> Rule:
    """The rule in `text`, with or without the "RRULE:" prefix; RuleError names what is wrong."""
    if len(text) > MAX_RULE_LENGTH:
        raise RuleError(f"A rule has at most {MAX_RULE_LENGTH} characters.")
    body = text.strip().upper().removeprefix("RRULE:")
    values: dict[str, str] = {}
    for part in body.split(";"):
        name, equals, value = part.partition("=")
        if name not in PARTS:
            raise RuleError(f"Unsupported part {name or part!r}. Allowed: {', '.join(PARTS)}.")
        if not equals or not value:
            raise RuleError(f"{name} needs a value, as in {name}=….")
        if name in values:
            raise RuleError(f"{name} is given twice.")
        values[name] = value
    if "FREQ" not in values:
        raise RuleError("FREQ is required: DAILY, WEEKLY, MONTHLY or YEARLY.")
    if "COUNT" in values and "UNTIL" in values:
        raise RuleError("COUNT and UNTIL cannot both be given.")
    freq = frequency(values["FREQ"])
    if freq == WEEKLY and "BYMONTHDAY" in values:
        raise RuleError("BYMONTHDAY cannot be used with FREQ=WEEKLY (RFC 5545).")
    if freq == DAILY and "BYDAY" in values and values.get("INTERVAL", "1") != "1":
        raise RuleError("BYDAY with FREQ=DAILY needs INTERVAL=1: use FREQ=WEEKLY for every other week.")
    if "BYMONTHDAY" in values and re.search(r"[0-9]", values.get("BYDAY", ""), re.ASCII):
        raise RuleError("BYDAY with an ordinal (2TU) cannot be combined with BYMONTHDAY.")
    return Rule(
        text=body,
        freq=freq,
        interval=number("INTERVAL", values.get("INTERVAL", "1"), 1, MAX_INTERVAL),
        byweekday=weekdays(values["BYDAY"], freq, in_months="BYMONTH" in values)
        if "BYDAY" in values
        else None,
        bymonthday=numbers("BYMONTHDAY", values["BYMONTHDAY"], 31, signed=True)
        if "BYMONTHDAY" in values
        else None,
        bymonth=numbers("BYMONTH", values["BYMONTH"], 12) if "BYMONTH" in values else None,
        count=number("COUNT", values["COUNT"], 1, MAX_COUNT) if "COUNT" in values else None,
        until=until(values["UNTIL"]) if "UNTIL" in values else None,
    )


def frequency(value: str) -> Frequency:
    if value not in FREQUENCIES:
        raise RuleError(f"FREQ must be one of {', '.join(FREQUENCIES)}; {value!r} is not supported.")
    return FREQUENCIES[value]


def number(name: str, value: str, minimum: int, maximum: int) -> int:
    # ASCII digits only, and few: int() would also take "+5", " 5" and other scripts' digits.
    if not (value.isascii() and value.isdigit() and len(value) <= 4 and minimum <= int(value) <= maximum):
        raise RuleError(f"{name} must be an integer from {minimum} to {maximum}.")
    return int(value)


def numbers(name: str, value: str, maximum: int, *, signed: bool = False) -> tuple[int, ...]:
    found = []
    for item in value.split(","):
        negative = signed and item.startswith("-")
        digits = item.removeprefix("-") if negative else item
        if not (digits.isascii() and digits.isdigit() and len(digits) <= 2 and 1 <= int(digits) <= maximum):
            allowed = f"1 to {maximum}" + (f" or -1 to -{maximum}" if signed else "")
            raise RuleError(f"{name} takes {allowed}, separated by commas.")
        found.append(-int(digits) if negative else int(digits))
    return tuple(found)


def weekdays(value: str, freq: int, *, in_months: bool) -> tuple[weekday, ...]:
    """BYDAY's weekdays; an ordinal counts within the month (MONTHLY, or YEARLY with BYMONTH) or the year."""
    found = []
    for item in value.split(","):
        match = BYDAY_ITEM.fullmatch(item)
        if match is None:
            raise RuleError("BYDAY takes weekdays (MO, TU, WE, TH, FR, SA, SU), separated by commas.")
        sign, ordinal, day = match.groups()
        if ordinal is None:
            if sign:
                raise RuleError("BYDAY takes weekdays (MO, TU, WE, TH, FR, SA, SU), separated by commas.")
            found.append(WEEKDAYS[day])
            continue
        limit = {MONTHLY: 5, YEARLY: 5 if in_months else 53}.get(freq)
        if limit is None:
            raise RuleError("BYDAY with an ordinal (2TU, -1FR) needs FREQ=MONTHLY or FREQ=YEARLY.")
        if not 1 <= int(ordinal) <= limit:
            raise RuleError(f"A BYDAY ordinal is 1 to {limit} or -1 to -{limit}.")
        found.append(WEEKDAYS[day](-int(ordinal) if sign == "-" else int(ordinal)))
    return tuple(found)


def until(value: str) -> datetime:
    if not UNTIL_FORMAT.fullmatch(value):
        raise RuleError("UNTIL must be a UTC time as YYYYMMDDTHHMMSSZ, e.g. 20271231T235959Z.")
    try:
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise RuleError("UNTIL must be a UTC time as YYYYMMDDTHHMMSSZ, e.g. 20271231T235959Z.") from None


def local(moment: datetime, zone: ZoneInfo) -> datetime:
    """The wall-clock time in `zone`, naive, as rrule expands it."""
    return moment.astimezone(zone).replace(tzinfo=None)


def instant(wall_clock: datetime, zone: ZoneInfo) -> datetime:
    return wall_clock.replace(tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class Occurrence:
    due_at: datetime
    number: int  # which occurrence of the series, from 1: what COUNT counts


def next_occurrence(
    rule: Rule, zone: ZoneInfo, *, due_at: datetime, number: int, after: datetime, from_completion: bool
) -> Occurrence | None:
    """The occurrence that follows occurrence `number`, due at `due_at`; None when the series ends.

    From the due date: the first occurrence of the series strictly after `after` (missed ones are
    skipped, and counted). From the completion: INTERVAL units after `after`'s local date, at the
    local time of day `due_at` has. A series whose next occurrence would fall past the year 9999
    ends there.
    """
    try:
        return following_occurrence(
            rule, zone, due_at=due_at, number=number, after=after, from_completion=from_completion
        )
    except (OverflowError, ValueError):  # the calendar's end: datetime's "year 10000 is out of range"
        return None


def following_occurrence(
    rule: Rule, zone: ZoneInfo, *, due_at: datetime, number: int, after: datetime, from_completion: bool
) -> Occurrence | None:
    if rule.count is not None and number >= rule.count:
        return None
    start = local(due_at, zone)
    if from_completion:
        day = local(after, zone).date() + STEPS[rule.freq] * rule.interval
        following = datetime.combine(day, start.time())
        skipped = 0
    elif unreachable(rule, start) is not None:  # refused when written; never searched to the year 9999
        return None
    else:
        series = expansion(rule, zone, start)
        found = series.after(max(start, local(after, zone)), inc=False)
        # Wall-clock times compare naively: in the hour a zone repeats, one may still be before `after`.
        while found is not None and instant(found, zone) <= after:
            found = series.after(found, inc=False)
        if found is None:
            return None
        following = found
        skipped = len(series.between(start, following, inc=False))
    following_number = number + skipped + 1
    if rule.count is not None and following_number > rule.count:
        return None
    if rule.until is not None and instant(following, zone) > rule.until:
        return None
    return Occurrence(instant(following, zone), following_number)


def expansion(rule: Rule, zone: ZoneInfo, start: datetime) -> rrule:
    """The series from `start` (wall-clock time in `zone`) up to UNTIL; COUNT is the caller's to apply
    (it counts from the series' first occurrence, not from `start`)."""
    return rrule(
        rule.freq,
        dtstart=start,
        interval=rule.interval,
        byweekday=rule.byweekday,
        bymonthday=rule.bymonthday,
        bymonth=rule.bymonth,
        # UNTIL as a wall-clock time a day late, so an UNTIL in a repeated hour loses nothing: the
        # exact bound is checked on the instant.
        until=local_until(rule.until, zone) if rule.until else None,
    )


def local_until(until: datetime, zone: ZoneInfo) -> datetime:
    try:
        return local(until, zone) + timedelta(days=1)
    except OverflowError:
        return datetime.max


def unreachable(rule: Rule, start: datetime) -> str | None:
    """Why no date from `start` on can match the rule, or None. dateutil tries every candidate date, so
    a rule no date matches would be searched to the year 9999: seconds of CPU in a write that holds the
    task's row. These are the ways a rule of this subset can match nothing."""
    months = set(rule.bymonth or range(1, 13))
    if rule.freq == MONTHLY:  # every INTERVAL months from the start's month
        months &= {(start.month - 1 + rule.interval * step) % 12 + 1 for step in range(12)}
        if not months:
            return "with this INTERVAL, no month of the series is in BYMONTH."
    if not rule.bymonthday:
        return None
    days = {
        (month, abs(day))
        for month in months
        for day in rule.bymonthday
        if abs(day) <= MONTH_LENGTHS[month - 1]
    }
    if not days:
        return "no month of the series has a day in BYMONTHDAY."
    if days == {(2, 29)} and rule.freq in (MONTHLY, YEARLY) and not leap_year_reached(rule, start):
        return "with this INTERVAL, the series never reaches a leap year's February 29."
    return None


def leap_year_reached(rule: Rule, start: datetime) -> bool:
    """Whether a series stepping INTERVAL years (YEARLY) or months (MONTHLY) from `start` meets a leap
    year's February; the Gregorian calendar repeats every 400 years."""
    months_per_step = rule.interval * (12 if rule.freq == YEARLY else 1)
    for step in range(4800):
        month_index = start.month - 1 + months_per_step * step
        year = start.year + month_index // 12
        if month_index % 12 == 1 and calendar.isleap(year):
            return True
    return False


def shifted(remind_at: datetime | None, due_at: datetime | None, new_due_at: datetime) -> datetime | None:
    """The reminder of an occurrence due at `new_due_at`: as long before it as `remind_at` was before
    `due_at`; none without both."""
    if remind_at is None or due_at is None:
        return None
    lead: timedelta = due_at - remind_at
    try:
        return new_due_at - lead
    except OverflowError:  # a reminder after the due date, pushed past the year 9999
        return None


def series_errors(
    *,
    rule_text: str | None,
    due_at: datetime | None,
    zone_name: str,
    from_completion: bool,
    clearing_due: bool,
) -> dict[str, list[str]]:
    """What is wrong with a task's series as a write would leave it, by field; nothing when it is fine.
    `rule_text` has passed parse_rule; `clearing_due`: the write sends `due_at: null` and no new rule."""
    if rule_text is None:
        return {}
    rule = parse_rule(rule_text)
    if due_at is None:
        if clearing_due:
            return {"due_at": ["A recurring task needs a due date. Send recurrence: null to end the series."]}
        return {"recurrence": ["A recurring task needs a due_at."]}
    if rule.until is not None and rule.until < due_at:
        return {"recurrence": ["UNTIL is before due_at."]}
    reason = unreachable(rule, local(due_at, ZoneInfo(zone_name)))
    if not from_completion and reason is not None:
        return {"recurrence": [f"No date matches this rule: {reason}"]}
    extra = rule.parts - set(COMPLETION_PARTS)
    if from_completion and extra:
        return {
            "recurrence": [
                f"With repeat_from completion only {', '.join(COMPLETION_PARTS)} are allowed, "
                f"not {', '.join(sorted(extra))}."
            ]
        }
    return {}
