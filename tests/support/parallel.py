"""Requests sent at once, for the tests of races through a real server."""

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

# Requests in flight together: more than the live servers' worker threads, so they queue and race.
PARALLEL = 16


def in_parallel(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Runs every call at once (as far as PARALLEL threads go) and returns their results in order."""
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        futures = [pool.submit(call) for call in calls]
        return [future.result(timeout=60) for future in futures]
