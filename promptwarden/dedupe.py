"""Remember what was already screened, so one Midjourney job is never counted twice.

A job shows up as a start message, several progress edits and a separate result message,
all carrying the same prompt and requester. Bounded in size and age, so a busy server
cannot grow it without limit; the database's unique keys back it across restarts.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable


def job_key(guild_id: int, requester_id: int | None, prompt: str) -> tuple[int, int, str]:
    """Identity of a generation job: who asked for which prompt, whitespace and case aside."""
    folded = " ".join(prompt.casefold().split())
    digest = hashlib.blake2b(folded.encode(), digest_size=12).hexdigest()
    return (guild_id, requester_id or 0, digest)


class SeenCache:
    def __init__(
        self,
        *,
        max_items: int = 50_000,
        ttl: float = 6 * 3600,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._items: OrderedDict[Hashable, float] = OrderedDict()
        self._max = max_items
        self._ttl = ttl
        self._clock = clock

    def seen(self, key: Hashable) -> bool:
        """True if `key` was marked within the TTL; does not mark it."""
        stamp = self._items.get(key)
        if stamp is None:
            return False
        if self._clock() - stamp > self._ttl:
            del self._items[key]
            return False
        return True

    def mark(self, key: Hashable) -> bool:
        """Mark `key`; returns False when it had already been seen (a repeat)."""
        repeat = self.seen(key)
        self._items[key] = self._clock()
        self._items.move_to_end(key)
        while len(self._items) > self._max:
            self._items.popitem(last=False)
        return not repeat

    def __len__(self) -> int:
        return len(self._items)
