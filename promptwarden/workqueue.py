"""A bounded, keyed work queue: order kept per key, memory kept bounded, the loop kept free.

A busy generation channel posts many prompts a second. Each key (a channel) always lands on
the same worker, so a channel's messages are handled in the order they arrived, while
different channels proceed in parallel. When every slot is taken, `put` waits: the gateway
reader slows down instead of the process growing without bound.
"""

from __future__ import annotations

import asyncio
import logging
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
        per_worker = max(1, capacity // workers)
        self._queues: list[asyncio.Queue[T]] = [asyncio.Queue(per_worker) for _ in range(workers)]
        self._tasks: list[asyncio.Task[None]] = []
        self.handled = 0
        self.failed = 0

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._run(q), name=f"promptwarden-worker-{i}")
                for i, q in enumerate(self._queues)
            ]

    async def put(self, key: Hashable, item: T) -> None:
        await self._queues[hash(key) % len(self._queues)].put(item)

    def pending(self) -> int:
        return sum(q.qsize() for q in self._queues)

    async def join(self) -> None:
        """Wait until everything queued so far has been handled."""
        for q in self._queues:
            await q.join()

    async def close(self) -> None:
        """Finish queued work, then stop the workers."""
        if self._tasks:
            await self.join()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _run(self, queue: asyncio.Queue[T]) -> None:
        while True:
            item = await queue.get()
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
                queue.task_done()
