"""A short-lived, per-process read-through cache of link targets for the redirect.

A link's code, video and channel never change; its destination (or the product's URL) may,
so an entry lives ``ttl`` seconds (5 by default): an edit reaches every process within that
time, and nothing is shared between processes or needed for correctness (a miss reads the
database). Unknown codes are cached too (as ``None``), so a flood of made-up codes costs
one query per code per TTL; the cache holds at most ``max_entries`` codes.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from links.schemas import LinkTarget

Loader = Callable[[str], Awaitable[LinkTarget | None]]


class LinkTargetCache:
    def __init__(self, ttl: float = 5.0, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[str, tuple[float, LinkTarget | None]] = OrderedDict()

    async def get(self, code: str, load: Loader) -> LinkTarget | None:
        now = self.clock()
        entry = self._entries.get(code)
        if entry is not None and entry[0] > now:
            return entry[1]
        target = await load(code)
        self._entries[code] = (now + self.ttl, target)
        self._entries.move_to_end(code)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return target

    def forget(self, code: str) -> None:
        self._entries.pop(code, None)
