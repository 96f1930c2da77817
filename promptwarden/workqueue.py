"""Fair work sharing for intake: order kept per channel, turns shared across guilds.

A busy generation channel posts many prompts a second, and one raided channel must not
stall every other guild. `FairQueue` serves guilds in turn, then channels within a guild;
one channel is handled by one worker at a time, so its messages keep their order. A worker
takes up to `batch` consecutive items of its channel at once, so a backlog costs one
handling (one transaction) per batch rather than one per item.
Workers start on demand and end when there is no work, so an idle bot holds no tasks
parked on an empty queue (which also lets test harnesses tell "idle" from "stuck").
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


G = TypeVar("G", bound=Hashable)
C = TypeVar("C", bound=Hashable)


class _Lane(Generic[T]):
    """One channel's items; `busy` while a worker handles one (a channel runs in order)."""

    __slots__ = ("busy", "items")

    def __init__(self) -> None:
        self.items: deque[T] = deque()
        self.busy = False


class FairQueue(Generic[G, C, T]):
    """Work shared round-robin across guilds (`G`), then across a guild's channels (`C`).

    A raided channel must not stall the rest: FIFO would serve its whole backlog before a
    prompt that arrives after it. Here each free worker takes the next guild in turn, and
    in that guild the next channel in turn, so a prompt in another guild waits behind at
    most one batch of the backlog per worker. A channel is handled by one worker at a time,
    in arrival order, up to `batch` items in one call of `handler`.

    `offer` never waits: it refuses (returns False) beyond `max_items` in total or
    `per_channel` in one channel, so memory stays bounded and no task waits holding an
    item. The caller decides what a refusal means (promptwarden.intake reads the channel
    back from history later).
    """

    def __init__(
        self,
        handler: Callable[[list[T]], Awaitable[None]],
        *,
        workers: int = 4,
        max_items: int = 1000,
        per_channel: int = 250,
        batch: int = 1,
    ) -> None:
        if workers < 1 or max_items < 1 or per_channel < 1 or batch < 1:
            raise ValueError("need at least one worker and room for one item")
        self._batch = batch
        self._handler = handler
        self._workers = workers
        self.max_items = max_items
        self.per_channel = per_channel
        self._lanes: dict[tuple[G, C], _Lane[T]] = {}
        # Ready lanes (items waiting, no worker on them): guilds in turn, channels in turn.
        self._guilds: deque[G] = deque()
        self._ready: dict[G, deque[C]] = {}
        self._running: set[asyncio.Task[None]] = set()
        self._items = 0  # queued plus being handled
        self._idle: asyncio.Event | None = None
        self._closed = False
        self.handled = 0
        self.failed = 0

    def __len__(self) -> int:
        """Items queued or being handled."""
        return self._items

    def channel_load(self, guild: G, channel: C) -> int:
        lane = self._lanes.get((guild, channel))
        return 0 if lane is None else len(lane.items) + lane.busy

    def has_room(self, guild: G, channel: C) -> bool:
        return (
            not self._closed
            and self._items < self.max_items
            and self.channel_load(guild, channel) < self.per_channel
        )

    def offer(self, guild: G, channel: C, item: T) -> bool:
        """Queue `item` if there is room; never waits."""
        if not self.has_room(guild, channel):
            return False
        lane = self._lanes.get((guild, channel))
        if lane is None:
            lane = self._lanes[(guild, channel)] = _Lane()
        lane.items.append(item)
        self._items += 1
        if self._idle is not None:
            self._idle.clear()
        if not lane.busy and len(lane.items) == 1:
            self._make_ready(guild, channel)
        if len(self._running) < self._workers:
            task = asyncio.create_task(self._run(), name="promptwarden-intake-worker")
            self._running.add(task)
        return True

    def drain(self) -> list[T]:
        """Take every queued item out (not those being handled), oldest first per channel."""
        taken: list[T] = []
        for lane in self._lanes.values():
            taken.extend(lane.items)
            self._items -= len(lane.items)
            lane.items.clear()
        self._guilds.clear()
        self._ready.clear()
        self._forget_idle_lanes()
        self._maybe_idle()
        return taken

    def drain_channel(self, guild: G, channel: C) -> list[T]:
        """Take the channel's queued items out (not the one being handled)."""
        lane = self._lanes.get((guild, channel))
        if lane is None or not lane.items:
            return []
        taken = list(lane.items)
        lane.items.clear()
        self._items -= len(taken)
        ready = self._ready.get(guild)
        if ready is not None and channel in ready:
            ready.remove(channel)
            if not ready:
                del self._ready[guild]
                self._guilds.remove(guild)
        if not lane.busy:
            del self._lanes[(guild, channel)]
        self._maybe_idle()
        return taken

    async def join(self) -> None:
        """Wait until everything queued so far has been handled."""
        while self._items:
            if self._idle is None:
                self._idle = asyncio.Event()
            self._idle.clear()
            await self._idle.wait()

    async def close(self, *, finish: bool = True) -> list[T]:
        """Refuse more; finish queued work (or, with `finish=False`, hand back what is
        queued and wait only for the items being handled)."""
        self._closed = True
        left = [] if finish else self.drain()
        await self.join()
        await asyncio.gather(*self._running, return_exceptions=True)
        return left

    def _make_ready(self, guild: G, channel: C) -> None:
        channels = self._ready.get(guild)
        if channels is None:
            channels = self._ready[guild] = deque()
            self._guilds.append(guild)
        channels.append(channel)

    def _take(self) -> tuple[tuple[G, C], _Lane[T], list[T]] | None:
        if not self._guilds:
            return None
        guild = self._guilds.popleft()
        channels = self._ready[guild]
        channel = channels.popleft()
        if channels:
            self._guilds.append(guild)  # its other channels wait for the guild's next turn
        else:
            del self._ready[guild]
        lane = self._lanes[(guild, channel)]
        lane.busy = True
        items = lane.items
        return (
            (guild, channel),
            lane,
            [items.popleft() for _ in range(min(self._batch, len(items)))],
        )

    async def _run(self) -> None:
        task = asyncio.current_task()
        try:
            # Taking and returning happen with no await between, so an `offer` either
            # finds this worker running or starts another.
            while (taken := self._take()) is not None:
                key, lane, items = taken
                try:
                    await self._handler(items)
                    self.handled += len(items)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # One bad item must not stop its channel.
                    self.failed += len(items)
                    log.exception("handling queued messages failed")
                finally:
                    lane.busy = False
                    self._items -= len(items)
                    if lane.items:
                        self._make_ready(*key)
                    elif self._lanes.get(key) is lane:
                        del self._lanes[key]
                    self._maybe_idle()
        finally:
            if task is not None:
                self._running.discard(task)

    def _forget_idle_lanes(self) -> None:
        for key in [k for k, lane in self._lanes.items() if not lane.busy and not lane.items]:
            del self._lanes[key]

    def _maybe_idle(self) -> None:
        if not self._items and self._idle is not None:
            self._idle.set()
