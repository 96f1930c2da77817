"""Intake: what the bot holds of the messages it still has to screen, bounded at any backlog.

A raid or a long outage can put hundreds of thousands of messages in front of the bot.
Holding them all costs memory without limit, so intake holds at most `max_messages` (and
`per_channel` per channel). A message that does not fit is not held: its channel is marked
*behind*, further live messages of that channel are let go too, and once the channel has
drained, its messages are read back from channel history, oldest first, from just below
the first one let go. Nothing is lost and each message is still handled once, in order.

The same machinery reads a channel after its catch-up cursor (a new session) and retries a
channel whose handling failed (a database locked past its timeout): its queued messages are
let go and re-read, with a backoff of 1 s doubling up to 30 s, so a violating prompt is
handled soon after the database recovers instead of at the next reconnect.

The catch-up cursor never passes an unhandled message: a channel behind keeps its first
unread message registered in flight (its *pin*) until history reading reaches it.

Discord-free: `fetch` reads a page of history and says which messages are in scope.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar

from promptwarden.cursors import CursorTracker
from promptwarden.workqueue import FairQueue

M = TypeVar("M")
Key = tuple[int, int]  # (guild id, channel id)


class Read(Enum):
    """A history message the reader dealt with itself (screened, nothing to do)."""

    HANDLED = "handled"


HANDLED = Read.HANDLED
# (guild, channel, read after this id, at most this many) -> (id, item to hold, or None when
# out of scope, or HANDLED) oldest first; fewer than asked means the newest was reached.
Fetch = Callable[[int, int, int, int], Awaitable[list[tuple[int, M | Read | None]]]]

log = logging.getLogger(__name__)

PAGE = 100  # Discord's largest history page
RETRY_FIRST = 1.0
RETRY_MAX = 30.0


class ChannelUnreadable(Exception):
    """The channel's history cannot be read (gone, or no permission): stop trying."""


@dataclass(slots=True)
class _Item(Generic[M]):
    key: Key
    message_id: int
    counts: bool  # a new message the cursor must not pass until handled
    message: M


@dataclass(slots=True)
class _Behind:
    after: int  # history after this id is still to be read
    pin: int | None = None  # kept in flight so the cursor stops below it
    refused_max: int = 0  # the newest live message let go while behind
    epoch: int | None = None  # a catch-up read: its cursor may move once read through
    not_before: float = 0.0  # loop time before which not to read (retry backoff)


class Intake(Generic[M]):
    def __init__(
        self,
        handle: Callable[[list[M]], Awaitable[int]],
        fetch: Fetch[M],
        tracker: Callable[[int], CursorTracker[Key]],
        *,
        max_messages: int = 2000,
        per_channel: int = 200,
        workers: int = 4,
        batch: int = 1,
        after_items: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        """`handle` gets up to `batch` consecutive messages of one channel and returns how
        many of them, from the first, are screened and their incidents, if any, recorded;
        the rest (all of them on an exception) are tried again later. `tracker` gives the
        cursor tracker of a guild (one per shard)."""
        self._handle = handle
        self._fetch = fetch
        self._tracker = tracker
        self._after_items = after_items
        self.queue: FairQueue[int, int, _Item[M]] = FairQueue(
            self._run_items,
            workers=workers,
            max_items=max_messages,
            per_channel=per_channel,
            batch=batch,
        )
        self._behind: dict[Key, _Behind] = {}
        self._backoff: dict[Key, float] = {}
        self._pump: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._settled = asyncio.Event()
        self._settled.set()
        self.closed = False
        self.let_go = 0  # messages not held, to be read back from history
        self.retries = 0

    # ------------------------------------------------------------ live messages

    def begin(self, key: Key, message_id: int) -> None:
        """Register a new message before any await, so arrival order holds."""
        self._tracker(key[0]).begin(key, message_id)

    def skip(self, key: Key, message_id: int) -> None:
        """A begun message turned out to be out of scope."""
        self._tracker(key[0]).finish(key, message_id, handled=False)

    def offer(self, key: Key, message_id: int, message: M, *, counts: bool = True) -> bool:
        """Hold a live message (begun already when `counts`); never waits. False when it
        was let go: it is read back from history once its channel has drained (an edit
        let go is not: history holds new messages, not edits)."""
        behind = self._behind.get(key)
        item = _Item(key, message_id, counts, message)
        if not self.closed and behind is None and self.queue.offer(key[0], key[1], item):
            return True
        if counts:
            self.let_go += 1
            if self.closed:
                return False  # left in flight: the saved cursor stays below it
            if behind is None:
                # The first message let go stays in flight: the cursor stops below it.
                self._behind[key] = _Behind(after=message_id - 1, pin=message_id)
                self._start_pump()
            else:
                behind.refused_max = max(behind.refused_max, message_id)
                self._tracker(key[0]).finish(key, message_id, handled=False)
        return False

    def behind(self, key: Key) -> bool:
        return key in self._behind

    def idle(self, key: Key) -> bool:
        """Nothing of the channel is held, being handled or to be read back."""
        return self.accepting(key) and not self.queue.channel_load(*key)

    def accepting(self, key: Key) -> bool:
        """New messages of the channel are taken live (not let go to be read back): the
        caller may screen one at once, finishing it with `handled_now` if it needs
        nothing; its cursor mark waits for the channel's earlier messages."""
        return not self.closed and key not in self._behind

    def handled_now(self, key: Key, message_id: int) -> None:
        """A begun message was handled by the caller itself (see `accepting`)."""
        self._tracker(key[0]).finish(key, message_id, handled=True)
        if self.idle(key):
            self._backoff.pop(key, None)

    # ------------------------------------------------------------ history

    def read(self, key: Key, after: int, *, epoch: int | None = None) -> None:
        """Read the channel's history after `after` (a catch-up): live messages of the
        channel are let go meanwhile and found in history, so order holds. With `epoch`,
        the channel's cursor tracker is told once the history was read through."""
        if self.closed:
            return
        behind = self._behind.get(key)
        if behind is None:
            self._behind[key] = _Behind(after=after, epoch=epoch)
        else:
            behind.after = min(behind.after, after)
            behind.epoch = epoch
            behind.not_before = 0.0
        self._settled.clear()
        self._start_pump()

    async def join(self) -> None:
        """Until nothing is held and no channel is behind (retries included)."""
        while self._behind or len(self.queue):
            if self._behind:
                self._settled.clear()
                await self._settled.wait()
            else:
                await self.queue.join()

    async def close(self) -> None:
        """Stop taking messages; let the ones being handled finish. Queued ones stay in
        flight for the cursor (so it stays below them) and are read again on the next
        start."""
        self.closed = True
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
        await self.queue.close(finish=False)
        self._behind.clear()
        self._settled.set()

    # ------------------------------------------------------------ internals

    def _admit(self, item: _Item[M], *, begun: bool) -> bool:
        tracker = self._tracker(item.key[0])
        if not begun:
            tracker.begin(item.key, item.message_id)
        if self.queue.offer(item.key[0], item.key[1], item):
            return True
        if not begun:
            tracker.finish(item.key, item.message_id, handled=False)
        return False

    async def _run_items(self, items: list[_Item[M]]) -> None:
        handled = 0
        try:
            handled = await self._handle([item.message for item in items])
        except Exception:
            log.exception("screening message %d failed; it is read again", items[0].message_id)
        finally:
            key = items[0].key
            tracker = self._tracker(key[0])
            retried = False
            for k, item in enumerate(items):
                if not item.counts:
                    continue
                if k < handled:
                    tracker.finish(key, item.message_id, handled=True)
                    self._backoff.pop(key, None)
                elif self.closed:
                    pass  # left in flight: the saved cursor stays below it
                elif not retried:
                    self._retry(item)  # this one and the channel's later ones read again
                    retried = True
                else:
                    tracker.finish(key, item.message_id, handled=False)
            self._wake.set()
        if self._after_items is not None:
            await self._after_items(len(items))

    def _retry(self, item: _Item[M]) -> None:
        """Handling failed: let the channel's queued messages go and read them again from
        history after a backoff; the failed one stays in flight until then."""
        key = item.key
        tracker = self._tracker(key[0])
        delay = self._backoff.get(key, RETRY_FIRST / 2) * 2
        self._backoff[key] = min(delay, RETRY_MAX)
        self.retries += 1
        for left in self.queue.drain_channel(key[0], key[1]):
            if left.counts:
                tracker.finish(key, left.message_id, handled=False)
        behind = self._behind.get(key)
        loop = asyncio.get_running_loop()
        if behind is None:
            behind = self._behind[key] = _Behind(after=item.message_id - 1)
        else:
            behind.after = min(behind.after, item.message_id - 1)
        if behind.pin is None or item.message_id < behind.pin:
            if behind.pin is not None:
                tracker.finish(key, behind.pin, handled=False)
            behind.pin = item.message_id
        else:
            tracker.finish(key, item.message_id, handled=False)
        behind.not_before = loop.time() + self._backoff[key]
        log.warning(
            "channel %d: a message could not be handled; reading it again in %.0f s",
            key[1],
            self._backoff[key],
        )
        self._settled.clear()
        self._start_pump()

    def _start_pump(self) -> None:
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._run_pump(), name="promptwarden-intake-reader")
        self._wake.set()

    async def _run_pump(self) -> None:
        """Read behind channels back in turn while intake has room."""
        loop = asyncio.get_running_loop()
        while self._behind and not self.closed:
            self._wake.clear()
            now = loop.time()
            ready = [
                key
                for key, b in self._behind.items()
                if b.not_before <= now and self._room(key) >= self.queue.per_channel // 2
            ]
            for key in ready:
                if self.closed:
                    return
                await self._read_page(key)
            if ready:
                await asyncio.sleep(0)
                continue
            waits = [b.not_before - now for b in self._behind.values() if b.not_before > now]
            timeout = min(waits, default=1.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(0.01, min(timeout, 1.0)))
        self._settled.set()

    def _room(self, key: Key) -> int:
        queue = self.queue
        total = queue.max_items - len(queue)
        return max(0, min(total, queue.per_channel - queue.channel_load(*key)))

    async def _read_page(self, key: Key) -> None:
        behind = self._behind.get(key)
        room = self._room(key)
        if behind is None or room <= 0:
            return
        limit = min(PAGE, room)
        # Live messages let go before this read started are in the page or were deleted;
        # one let go while it ran may be newer than the page, so read once more then.
        refused_before = behind.refused_max
        try:
            page = await self._fetch(key[0], key[1], behind.after, limit)
        except ChannelUnreadable as error:
            log.warning("channel %d: history cannot be read: %s", key[1], error)
            self._give_up(key, behind)
            return
        except Exception as error:
            delay = min(self._backoff.get(key, RETRY_FIRST / 2) * 2, RETRY_MAX)
            self._backoff[key] = delay
            behind.not_before = asyncio.get_running_loop().time() + delay
            log.warning(
                "channel %d: reading history failed (%s); again in %.0f s", key[1], error, delay
            )
            return
        if self._behind.get(key) is not behind or self.closed:
            return  # given up or closed meanwhile
        tracker = self._tracker(key[0])
        for message_id, message in page:
            if behind.pin is not None and message_id > behind.pin:
                tracker.finish(key, behind.pin, handled=False)  # gone meanwhile
                behind.pin = None
            if message is None or message is HANDLED:
                # Nothing to hold: out of scope, or handled by the reader (an allowed
                # prompt, which the cursor may then cover).
                handled = message is HANDLED
                if behind.pin == message_id:
                    tracker.finish(key, message_id, handled=handled)
                    behind.pin = None
                elif handled:
                    tracker.begin(key, message_id)
                    tracker.finish(key, message_id, handled=True)
                behind.after = message_id
                continue
            begun = behind.pin == message_id
            if not self._admit(_Item(key, message_id, True, message), begun=begun):
                return  # full: the rest of the page is read again later
            if begun:
                behind.pin = None
            behind.after = message_id
        if len(page) < limit and behind.refused_max == refused_before:
            self._caught_up(key, behind)

    def _caught_up(self, key: Key, behind: _Behind) -> None:
        del self._behind[key]
        tracker = self._tracker(key[0])
        if behind.pin is not None:
            tracker.finish(key, behind.pin, handled=False)
        if behind.epoch is not None:
            tracker.caught_up(key, behind.epoch)

    def _give_up(self, key: Key, behind: _Behind) -> None:
        del self._behind[key]
        tracker = self._tracker(key[0])
        tracker.hold(key)  # the next catch-up reads it again from the saved cursor
        if behind.pin is not None:
            tracker.finish(key, behind.pin, handled=False)
