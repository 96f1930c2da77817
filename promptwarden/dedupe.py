"""Remember what was already screened, so one Midjourney job is never counted twice.

A job shows up as a start message, several progress edits and a separate result message,
all carrying the same prompt and requester. Bounded in size and age, so a busy server
cannot grow it without limit; the database's unique keys back it across restarts.

A job's identity is stored with its incident, so it must not give the prompt away: a
plain hash of a short prompt is confirmed by hashing guesses. It is an HMAC under a
secret of this installation instead, made once and kept in the database (so identities
survive a restart and every process sharing the database agrees), never logged and never
part of a member's data.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Protocol

log = logging.getLogger(__name__)

JOB_KEY_SECRET_META = "job_key_secret"
SECRET_BYTES = 32
DIGEST_BYTES = 16  # 128 bits: no collision among a guild's jobs, no guessing the key


class JobKeyer:
    """Keys job identities with HMAC-SHA256 and one installation's secret."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        if len(secret) < SECRET_BYTES:
            raise ValueError(f"a job key secret needs at least {SECRET_BYTES} bytes")
        self._secret = secret

    @classmethod
    def generate(cls) -> JobKeyer:
        return cls(secrets.token_bytes(SECRET_BYTES))

    @classmethod
    def from_stored(cls, text: str) -> JobKeyer:
        """The keyer kept in the database (hex); ValueError when it is not one."""
        return cls(bytes.fromhex(text))

    def stored(self) -> str:
        return self._secret.hex()

    def digest(self, prompt: str) -> str:
        """The prompt's keyed digest, whitespace and case aside."""
        folded = " ".join(prompt.casefold().split())
        mac = hmac.new(self._secret, folded.encode(), hashlib.sha256)
        return mac.digest()[:DIGEST_BYTES].hex()

    def __repr__(self) -> str:
        return "JobKeyer(<secret>)"


class MetaStore(Protocol):
    async def get_meta(self, key: str) -> str | None: ...

    async def set_meta(self, key: str, value: str) -> None: ...


async def installation_job_keyer(storage: MetaStore) -> JobKeyer:
    """This installation's keyer: the one in the database, made and stored on first use."""
    stored = await storage.get_meta(JOB_KEY_SECRET_META)
    if stored is not None:
        try:
            return JobKeyer.from_stored(stored)
        except ValueError:
            log.warning(
                "the stored job key secret is damaged; a new one replaces it (jobs posted "
                "before now may each be counted once more)"
            )
    await storage.set_meta(JOB_KEY_SECRET_META, JobKeyer.generate().stored())
    # Read back: processes starting together on one database all adopt the stored one.
    stored = await storage.get_meta(JOB_KEY_SECRET_META)
    assert stored is not None
    return JobKeyer.from_stored(stored)


def job_key(
    keyer: JobKeyer, guild_id: int, requester_id: int | None, prompt: str
) -> tuple[int, int, str]:
    """Identity of a generation job: who asked for which prompt, whitespace and case aside."""
    return (guild_id, requester_id or 0, keyer.digest(prompt))


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

    def forget(self, key: Hashable) -> None:
        """Unmark `key`: its handling failed, and a repeat must be handled again."""
        self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)
