"""Remembers verified tokens, so a client's repeated requests skip signature checks and user lookups.

Entries are keyed by a hash of the token, bounded in number, and live until the token expires
or USER_RECHECK_SECONDS pass (so a disabled account or a new key set takes effect soon).
"""

import copy
import hashlib
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from authbridge.models import User
from authbridge.verifier import Claims
from todo_api.metrics import TOKEN_CACHE_HITS, TOKEN_CACHE_MISSES

MAX_ENTRIES = 4096
USER_RECHECK_SECONDS = 60


class _Entry(NamedTuple):
    user: User
    claims: Claims
    valid_until: float
    keys_version: int


class TokenCache:
    """`clock` is the epoch time in seconds, as the token's `exp` is (tests pass their own)."""

    def __init__(
        self,
        max_entries: int = MAX_ENTRIES,
        recheck_seconds: float = USER_RECHECK_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_entries = max_entries
        self.recheck_seconds = recheck_seconds
        self.clock = clock
        self._entries: dict[bytes, _Entry] = {}
        # Requests run in threads (gunicorn's gthread workers): evicting the oldest entry and
        # inserting are two steps that must not interleave with another thread's removals.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def key(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def get(self, key: bytes, current_keys_version: Callable[[], int]) -> tuple[User, Claims] | None:
        """A copy of the cached (user, claims) for this token, or None.

        `current_keys_version` is called on a hit only, so unknown tokens never touch the key set.
        Each caller gets its own User and claims: concurrent requests with one token never share a
        mutable instance (a view that changes `request.user` cannot race another request).
        """
        entry = self._entries.get(key)
        if entry is None:
            TOKEN_CACHE_MISSES.inc()
            return None
        if self.clock() >= entry.valid_until or entry.keys_version != current_keys_version():
            with self._lock:
                self._entries.pop(key, None)
            TOKEN_CACHE_MISSES.inc()
            return None
        TOKEN_CACHE_HITS.inc()
        return copy.copy(entry.user), dict(entry.claims)

    def put(self, key: bytes, user: User, claims: Claims, keys_version: int) -> None:
        valid_until = min(claims["exp"], self.clock() + self.recheck_seconds)
        # Stored as copies too: the request that verified the token keeps using its own instance.
        entry = _Entry(copy.copy(user), dict(claims), valid_until, keys_version)
        with self._lock:
            while self._entries and len(self._entries) >= self.max_entries:
                # Dicts keep insertion order: drop the oldest entry.
                del self._entries[next(iter(self._entries))]
            self._entries[key] = entry

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
