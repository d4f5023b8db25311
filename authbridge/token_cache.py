"""Remembers verified tokens, so a client's repeated requests skip signature checks and user lookups.

Entries are keyed by a hash of the token, bounded in number, and live until the token expires
or USER_RECHECK_SECONDS pass (so a disabled account or a new key set takes effect soon).
"""

import hashlib
import time

MAX_ENTRIES = 4096
USER_RECHECK_SECONDS = 60


class TokenCache:
    def __init__(self, max_entries=MAX_ENTRIES, recheck_seconds=USER_RECHECK_SECONDS):
        self.max_entries = max_entries
        self.recheck_seconds = recheck_seconds
        self._entries = {}

    @staticmethod
    def key(token):
        return hashlib.sha256(token.encode()).digest()

    def get(self, key, current_keys_version):
        """The cached (user, claims) for this token, or None.

        `current_keys_version` is called on a hit only, so unknown tokens never touch the key set.
        """
        entry = self._entries.get(key)
        if entry is None:
            return None
        user, claims, valid_until, cached_keys_version = entry
        if time.time() >= valid_until or cached_keys_version != current_keys_version():
            self._entries.pop(key, None)
            return None
        return user, claims

    def put(self, key, user, claims, keys_version):
        if len(self._entries) >= self.max_entries:
            # Dicts keep insertion order: drop the oldest entry.
            self._entries.pop(next(iter(self._entries), None), None)
        valid_until = min(claims["exp"], time.time() + self.recheck_seconds)
        self._entries[key] = (user, claims, valid_until, keys_version)

    def clear(self):
        self._entries.clear()
