"""A bounded, keyed work queue: order kept per key, memory kept bounded, the loop kept free.

A busy generation channel posts many prompts a second. Each key (a channel) always lands on
the same worker, so a channel's messages are handled in the order they arrived, while
different channels proceed in parallel. When every slot is taken, `put` waits: the gateway
reader slows down instead of the process growing without bound.

Workers start on demand and end when their queue runs dry, so an idle bot holds no tasks
parked on an empty queue (which also lets test harnesses tell "idle" from "stuck").
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
        self._tasks: list[asyncio.Task[None] | None] = [None] * workers
        self._closed = False
        self.handled = 0
        self.failed = 0

    def start(self) -> None:
        """Kept for callers that start explicitly; workers start on demand anyway."""
        self._closed = False

    async def put(self, key: Hashable, item: T) -> None:
        if self._closed:
            raise RuntimeError("the work queue is closed")
        index = hash(key) % len(self._queues)
        await self._queues[index].put(item)
        task = self._tasks[index]
        if task is None or task.done():
            self._tasks[index] = asyncio.create_task(
                self._run(self._queues[index]), name=f"promptwarden-worker-{index}"
            )

    def pending(self) -> int:
        return sum(q.qsize() for q in self._queues)

    async def join(self) -> None:
        """Wait until everything queued so far has been handled."""
        for q in self._queues:
            await q.join()

    async def close(self) -> None:
        """Finish queued work, then refuse more."""
        self._closed = True
        await self.join()
        running = [t for t in self._tasks if t is not None]
        await asyncio.gather(*running, return_exceptions=True)
        self._tasks = [None] * len(self._queues)

    async def _run(self, queue: asyncio.Queue[T]) -> None:
        # Checking emptiness and returning happen in one step (no await between), so a
        # `put` either lands before the check or sees this task done and starts another.
        while not queue.empty():
            item = queue.get_nowait()
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
