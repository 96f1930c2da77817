import asyncio

import pytest

from promptwarden.dedupe import JobKeyer, SeenCache, job_key
from promptwarden.workqueue import KeyedWorkQueue


async def test_order_is_kept_per_channel_across_workers() -> None:
    seen: dict[int, list[int]] = {}

    async def handle(item: tuple[int, int]) -> None:
        channel, n = item
        await asyncio.sleep(0 if n % 3 else 0.001)  # uneven work must not reorder a channel
        seen.setdefault(channel, []).append(n)

    q: KeyedWorkQueue[tuple[int, int]] = KeyedWorkQueue(handle, workers=3, capacity=30)
    q.start()
    for n in range(60):
        for channel in (1, 2, 3, 4):
            await q.put(channel, (channel, n))
    await q.close()
    assert seen == {c: list(range(60)) for c in (1, 2, 3, 4)}
    assert q.handled == 240


async def test_put_waits_when_full_so_memory_stays_bounded() -> None:
    gate = asyncio.Event()

    async def handle(item: int) -> None:
        await gate.wait()

    q: KeyedWorkQueue[int] = KeyedWorkQueue(handle, workers=1, capacity=2)
    q.start()
    for i in range(3):  # one in the worker's hands, two queued
        await q.put("c", i)
    await asyncio.sleep(0)
    blocked = asyncio.create_task(q.put("c", 99))
    await asyncio.sleep(0.01)
    assert not blocked.done()
    assert q.pending() == 2
    gate.set()
    await blocked
    await q.close()
    assert q.handled == 4


async def test_a_failing_message_does_not_stop_its_channel() -> None:
    done: list[int] = []

    async def handle(item: int) -> None:
        if item == 1:
            raise RuntimeError("boom")
        done.append(item)

    q: KeyedWorkQueue[int] = KeyedWorkQueue(handle, workers=1, capacity=4)
    q.start()
    for i in range(3):
        await q.put("c", i)
    await q.close()
    assert done == [0, 2]
    assert q.failed == 1


def test_invalid_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        KeyedWorkQueue(lambda _: asyncio.sleep(0), workers=0)


def test_repeats_of_a_job_are_recognised_within_ttl() -> None:
    now = [0.0]
    cache = SeenCache(ttl=60, clock=lambda: now[0])
    keyer = JobKeyer.generate()
    key = job_key(keyer, 1, 42, "A  Cat  --ar 3:2")
    assert cache.mark(key) is True
    # The same job, other spacing and case:
    assert cache.mark(job_key(keyer, 1, 42, "a cat --ar 3:2")) is False
    assert cache.mark(job_key(keyer, 1, 43, "a cat --ar 3:2")) is True  # someone else's job
    assert cache.mark(job_key(keyer, 2, 42, "a cat --ar 3:2")) is True  # another guild
    now[0] = 61 + 60
    assert cache.mark(key) is True  # expired


def test_seen_cache_is_bounded() -> None:
    cache = SeenCache(max_items=100)
    for i in range(1000):
        cache.mark(i)
    assert len(cache) == 100
    assert cache.seen(999) and not cache.seen(0)


async def test_workers_end_when_idle_and_restart_on_new_work() -> None:
    done: list[int] = []

    async def handle(item: int) -> None:
        await asyncio.sleep(0)
        done.append(item)

    q: KeyedWorkQueue[int] = KeyedWorkQueue(handle, workers=2, capacity=4)
    await q.put("a", 1)
    await q.join()
    await asyncio.sleep(0)
    assert all(t is None or t.done() for t in q._tasks)  # nothing parked on an empty queue
    await q.put("a", 2)
    await q.close()
    assert done == [1, 2]
    with pytest.raises(RuntimeError, match="closed"):
        await q.put("a", 3)


async def test_producers_waiting_for_room_are_let_in_in_arrival_order() -> None:
    """Under backpressure a newer message must not overtake an older one of its channel
    (asyncio.Queue lets a newcomer take a freed slot before a producer already waiting)."""
    gate = asyncio.Event()
    seen: list[int] = []

    async def handle(item: int) -> None:
        await gate.wait()
        seen.append(item)

    q: KeyedWorkQueue[int] = KeyedWorkQueue(handle, workers=1, capacity=2)
    for i in range(3):
        await q.put("c", i)
    waiting = [asyncio.create_task(q.put("c", i)) for i in range(3, 8)]
    await asyncio.sleep(0.01)
    assert q.pending() == 2 and q.waiting() == 5
    gate.set()
    await asyncio.sleep(0)  # a slot frees up; a newcomer arrives at the same moment
    late = asyncio.create_task(q.put("c", 8))
    await asyncio.gather(*waiting, late)
    await q.close()
    assert seen == list(range(9))


async def test_a_cancelled_waiting_producer_passes_its_slot_on() -> None:
    gate = asyncio.Event()

    async def handle(item: int) -> None:
        await gate.wait()

    q: KeyedWorkQueue[int] = KeyedWorkQueue(handle, workers=1, capacity=1)
    await q.put("c", 0)
    await q.put("c", 1)
    first = asyncio.create_task(q.put("c", 2))
    second = asyncio.create_task(q.put("c", 3))
    await asyncio.sleep(0.01)
    first.cancel()
    gate.set()
    await second
    await q.close()
    assert q.handled == 3 and q.waiting() == 0
