"""A bounded, keyed work queue: order kept per key, memory kept bounded, the loop kept free.

A busy generation channel posts many prompts a second. Each key (a channel) always lands on
the same worker, so a channel's messages are handled in the order they arrived, while
different channels proceed in parallel. When every slot is taken, `put` waits in line:
producers are let in strictly in the order they came (asyncio.Queue lets a newcomer take a
freed slot before a producer already waiting, which reorders a channel under load).

Workers start on demand and end when their queue runs dry, so an idle bot holds no tasks
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


class KeyedWorkQueue(Generic[T]):
    def __init__(
        self,
        handler: Callable[[T], Awaitable[None]],
        *,
        workers: int = 4,
        capacity: int = 1000,
    ) -> None:
        if workers < 1 or capacity < workers:
            raise ValueError("need at least one worker and capacity >= workers")
        self._handler = handler
        self._capacity = capacity
        self._queues: list[deque[T]] = [deque() for _ in range(workers)]
        self._tasks: list[asyncio.Task[None] | None] = [None] * workers
        self._slots = 0  # items queued plus slots handed to waiting producers
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._unfinished = 0
        self._idle: asyncio.Event | None = None
        self._closed = False
        self.handled = 0
        self.failed = 0

    def start(self) -> None:
        """Kept for callers that start explicitly; workers start on demand anyway."""
        self._closed = False

    async def put(self, key: Hashable, item: T) -> None:
        if self._closed:
            raise RuntimeError("the work queue is closed")
        if self._slots >= self._capacity or self._waiting:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                await waiter  # resolved with a slot reserved for this producer
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._slots -= 1  # the slot was handed over: pass it on
                    self._let_in()
                else:
                    self._waiting.remove(waiter)
                raise
        else:
            self._slots += 1
        index = hash(key) % len(self._queues)
        self._queues[index].append(item)
        self._unfinished += 1
        if self._idle is not None:
            self._idle.clear()
        task = self._tasks[index]
        if task is None or task.done():
            self._tasks[index] = asyncio.create_task(
                self._run(self._queues[index]), name=f"promptwarden-worker-{index}"
            )

    def pending(self) -> int:
        """Items queued and not yet taken by a worker."""
        return sum(len(q) for q in self._queues)

    def waiting(self) -> int:
        """Producers waiting for room."""
        return len(self._waiting)

    async def join(self) -> None:
        """Wait until everything queued so far has been handled."""
        while self._unfinished:
            if self._idle is None:
                self._idle = asyncio.Event()
            self._idle.clear()
            await self._idle.wait()

    async def close(self) -> None:
        """Finish queued work, then refuse more."""
        self._closed = True
        await self.join()
        running = [t for t in self._tasks if t is not None]
        await asyncio.gather(*running, return_exceptions=True)
        self._tasks = [None] * len(self._queues)

    def _let_in(self) -> None:
        while self._waiting and self._slots < self._capacity:
            waiter = self._waiting.popleft()
            if not waiter.done():
                self._slots += 1
                waiter.set_result(None)

    async def _run(self, queue: deque[T]) -> None:
        # Checking emptiness and returning happen in one step (no await between), so a
        # `put` either lands before the check or sees this task done and starts another.
        while queue:
            item = queue.popleft()
            self._slots -= 1
            self._let_in()
            try:
                await self._handler(item)
                self.handled += 1
            except asyncio.CancelledError:
                raise
            except Exception:
                # One bad message must not stop its channel's worker.
                self.failed += 1
                log.exception("screening a queued message failed")
            finally:
                self._unfinished -= 1
                if not self._unfinished and self._idle is not None:
                    self._idle.set()
