"""A short-lived, per-process memory of API keys already verified against the database.

Every agent and merchant request used to look its key up in the database. A verified key
is now trusted for ``ttl`` seconds (``REELCART_API_KEY_CACHE_SECONDS``, default 5), then
checked again, so a revocation — made by any process: the CLI, another API process, the
dashboard — takes effect everywhere within ``ttl`` seconds. Only keys that were valid are
remembered: a key created a moment ago in another process works at once, and an unknown
or revoked key is looked up every time (nothing about it is cached). ``ttl`` 0 turns the
cache off. Entries are keyed by the key's SHA-256, never the key itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

P = TypeVar("P")

MAX_ENTRIES = 10_000


class KeyCache(Generic[P]):
    def __init__(self, ttl: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[str, tuple[float, P]] = {}

    def get(self, digest: str) -> P | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if self._clock() >= entry[0]:
            del self._entries[digest]
            return None
        return entry[1]

    def put(self, digest: str, principal: P) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()  # rare: bounded memory beats an LRU's bookkeeping
        self._entries[digest] = (self._clock() + self.ttl, principal)

    def forget(self, digest: str) -> None:
        self._entries.pop(digest, None)
