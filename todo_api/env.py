"""Strict readers for settings that come from the environment.

A bad value stops start-up with a message that names the variable.
"""

import os
from collections.abc import Iterable
from typing import TypeVar

from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}

Number = TypeVar("Number", int, float)


def env_str(name: str, default: str | None = None) -> str | None:
    """The variable's value, or `default`; a `NAME_FILE` variable may name a file holding it."""
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        try:
            with open(file_path, encoding="utf-8") as secret_file:
                return secret_file.read().strip()
        except OSError as error:
            raise ImproperlyConfigured(f"{name}_FILE: cannot read {file_path}: {error}") from error
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name} must be one of 1/0, true/false, yes/no, on/off; got {value!r}")


def env_number(name: str, default: Number, kind: type[Number] = int, minimum: Number = 0) -> Number:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = kind(value)
    except ValueError as error:
        raise ImproperlyConfigured(f"{name} must be a {kind.__name__}; got {value!r}") from error
    if number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}; got {value!r}")
    return number


def env_list(name: str, default: Iterable[str] = ()) -> list[str]:
    """A comma-separated list; blanks are dropped."""
    value = os.environ.get(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


RATE_PERIODS = {"s": 1, "sec": 1, "second": 1, "min": 60, "minute": 60, "hour": 3600, "day": 86400}


def env_rate(name: str) -> tuple[int, int] | None:
    """A rate such as `600/min` as (600, 60); None when unset or blank."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    count, _, period = value.strip().partition("/")
    seconds = RATE_PERIODS.get(period.strip().lower())
    if not count.strip().isdigit() or int(count) < 1 or seconds is None:
        raise ImproperlyConfigured(
            f"{name} must be a count per s, min, hour or day, such as 600/min; got {value!r}"
        )
    return int(count), seconds
