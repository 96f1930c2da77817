"""Intake and its fair queue, with a channel history in memory standing in for Discord's."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from promptwarden.cursors import CursorTracker
from promptwarden.intake import HANDLED, Fetch, Intake, Key, Read
from promptwarden.workqueue import FairQueue

GUILD_A, GUILD_B = 1, 2


async def test_a_backlog_in_one_channel_delays_another_guild_by_one_slot_at_most() -> None:
    order: list[str] = []
    gate = asyncio.Event()

    async def handle(items: list[str]) -> None:
        (item,) = items
        if item.startswith("raid"):
            await asyncio.sleep(0.001)  # a slow channel: deletes, rate-limit sleeps
        order.append(item)
        if item == "raid-0":
            gate.set()

    q: FairQueue[int, int, str] = FairQueue(handle, workers=1, max_items=1000, per_channel=500)
    for i in range(300):
        assert q.offer(GUILD_A, 10, f"raid-{i}")
    await gate.wait()  # the backlog is being worked through
    assert q.offer(GUILD_B, 20, "prompt")
    assert q.offer(GUILD_A, 11, "neighbour")
    await q.join()
    at = order.index("raid-0")
    # One raid message may be in a worker's hands when the prompt arrives: one slot.
    assert order.index("prompt") - at <= 2
    # Inside the raided guild another channel takes its turn too.
    assert order.index("neighbour") - at <= 4
    assert [o for o in order if o.startswith("raid")] == [f"raid-{i}" for i in range(300)]


async def test_offer_never_waits_and_refuses_beyond_the_limits() -> None:
    async def handle(items: list[int]) -> None:
        await asyncio.sleep(0)

    q: FairQueue[int, int, int] = FairQueue(handle, workers=2, max_items=5, per_channel=3)
    assert [q.offer(GUILD_A, 1, i) for i in range(4)] == [True, True, True, False]
    assert [q.offer(GUILD_A, 2, i) for i in range(3)] == [True, True, False]  # 5 in total
    await q.join()
    assert q.handled == 5 and len(q) == 0


class History:
    """Channels' messages as Discord keeps them; `fetch` is intake's reader."""

    def __init__(self) -> None:
        self.channels: dict[Key, list[int]] = defaultdict(list)
        self.next_id = 1000
        self.reads = 0

    def post(self, key: Key) -> int:
        self.next_id += 1
        self.channels[key].append(self.next_id)
        return self.next_id

    async def fetch(
        self, guild: int, channel: int, after: int, limit: int
    ) -> list[tuple[int, int | Read | None]]:
        self.reads += 1
        await asyncio.sleep(0)
        page: list[tuple[int, int | Read | None]] = [
            (i, i) for i in self.channels[(guild, channel)] if i > after
        ]
        return page[:limit]


def make_intake(
    history: History,
    handled: list[int],
    tracker: CursorTracker[Key],
    *,
    fail: dict[int, int] | None = None,
    max_messages: int = 10,
    per_channel: int = 4,
    batch: int = 1,
    fetch: Fetch[int] | None = None,
) -> tuple[Intake[int], list[int]]:
    peak: list[int] = [0]
    fails = dict(fail or {})

    async def handle(message_ids: list[int]) -> int:
        peak[0] = max(peak[0], len(intake.queue))
        await asyncio.sleep(0)
        for done, message_id in enumerate(message_ids):
            if fails.get(message_id, 0) > 0:
                fails[message_id] -= 1
                if done:
                    return done  # the ones before it stay handled
                raise RuntimeError("database is locked")
            handled.append(message_id)
        return len(message_ids)

    intake: Intake[int] = Intake(
        handle,
        fetch or history.fetch,
        lambda guild: tracker,
        max_messages=max_messages,
        per_channel=per_channel,
        workers=2,
        batch=batch,
    )
    return intake, peak


def live(intake: Intake[int], history: History, key: Key) -> int:
    message_id = history.post(key)
    intake.begin(key, message_id)
    intake.offer(key, message_id, message_id)
    return message_id


async def test_a_burst_beyond_the_limit_is_held_in_bounded_memory_and_handled_once() -> None:
    history = History()
    handled: list[int] = []
    tracker: CursorTracker[Key] = CursorTracker()
    tracker.catch_up_done(tracker.epoch)
    intake, peak = make_intake(history, handled, tracker)
    raid, quiet = (GUILD_A, 1), (GUILD_B, 2)
    posted = [live(intake, history, raid) for _ in range(500)]  # no await: one burst
    posted_quiet = [live(intake, history, quiet) for _ in range(3)]
    assert len(intake.queue) <= 10 and intake.behind(raid)
    await intake.join()

    assert peak[0] <= 10
    assert sorted(handled) == sorted(posted + posted_quiet)  # each once, none lost
    assert [i for i in handled if i in set(posted)] == posted  # in order
    assert not intake.behind(raid)
    assert tracker.take_advanced() == {raid: posted[-1], quiet: posted_quiet[-1]}


async def test_the_cursor_never_passes_a_message_let_go() -> None:
    history = History()
    handled: list[int] = []
    tracker: CursorTracker[Key] = CursorTracker()
    tracker.catch_up_done(tracker.epoch)
    intake, _ = make_intake(history, handled, tracker, max_messages=2, per_channel=2)
    key = (GUILD_A, 1)
    first = [live(intake, history, key) for _ in range(5)]
    await asyncio.sleep(0)
    # While the backlog is read back, the cursor stays below every unhandled message.
    while intake.behind(key):
        advanced = tracker.take_advanced().get(key)
        if advanced is not None:
            assert all(i in handled for i in first if i <= advanced)
        await asyncio.sleep(0)
    await intake.join()
    assert handled == first


async def test_a_failing_message_is_read_again_after_a_backoff_and_handled_once() -> None:
    history = History()
    handled: list[int] = []
    tracker: CursorTracker[Key] = CursorTracker()
    tracker.catch_up_done(tracker.epoch)
    key = (GUILD_A, 1)
    ids = [history.post(key) for _ in range(3)]
    intake, _ = make_intake(history, handled, tracker, fail={ids[1]: 1})
    intake.read(key, 0)  # as a catch-up does
    await intake.join()
    assert handled == ids  # the failed one again, then the next, in order
    assert intake.retries == 1
    assert tracker.take_advanced() == {key: ids[-1]}
    await intake.close()


async def test_a_channel_backlog_is_handed_over_in_batches_in_order() -> None:
    calls: list[list[str]] = []

    async def handle(items: list[str]) -> None:
        calls.append(items)
        await asyncio.sleep(0)

    q: FairQueue[int, int, str] = FairQueue(
        handle, workers=1, max_items=1000, per_channel=500, batch=8
    )
    for i in range(20):
        assert q.offer(GUILD_A, 10, f"raid-{i}")
    assert q.offer(GUILD_B, 20, "prompt")
    await q.join()
    assert q.handled == 21 and len(q) == 0
    assert max(map(len, calls)) == 8  # a backlog costs a handling per batch, not per item
    raid = [item for batch in calls for item in batch if item.startswith("raid")]
    assert raid == [f"raid-{i}" for i in range(20)]
    # The other guild's prompt waited behind one batch at most.
    assert [i for i, batch in enumerate(calls) if "prompt" in batch] == [1]


async def test_a_failure_inside_a_batch_keeps_the_ones_before_and_reads_the_rest_again() -> None:
    history = History()
    handled: list[int] = []
    tracker: CursorTracker[Key] = CursorTracker()
    tracker.catch_up_done(tracker.epoch)
    key = (GUILD_A, 1)
    ids = [history.post(key) for _ in range(9)]
    intake, _ = make_intake(
        history, handled, tracker, fail={ids[4]: 1}, max_messages=50, per_channel=50, batch=6
    )
    intake.read(key, 0)
    await intake.join()
    assert handled == ids  # each exactly once, in order: the failed one and its followers again
    assert intake.retries == 1
    assert tracker.take_advanced() == {key: ids[-1]}
    await intake.close()


async def test_messages_the_reader_handles_are_never_held_and_the_cursor_covers_them() -> None:
    history = History()
    handled: list[int] = []
    tracker: CursorTracker[Key] = CursorTracker()
    tracker.catch_up_done(tracker.epoch)
    key = (GUILD_A, 1)
    ids = [history.post(key) for _ in range(250)]
    violating = set(ids[::50])

    async def fetch(
        guild: int, channel: int, after: int, limit: int
    ) -> list[tuple[int, int | Read | None]]:
        page = await history.fetch(guild, channel, after, limit)
        # As the watcher's reader does: allowed prompts are screened and done in the read.
        return [(i, i if i in violating else HANDLED) for i, _ in page]

    intake, peak = make_intake(
        history, handled, tracker, max_messages=3, per_channel=3, fetch=fetch
    )
    intake.read(key, 0)
    await intake.join()
    assert handled == sorted(violating) and peak[0] <= 3
    assert tracker.take_advanced() == {key: ids[-1]}  # the allowed tail is covered too
    await intake.close()


async def test_close_leaves_queued_messages_below_the_cursor() -> None:
    history = History()
    handled: list[int] = []
    tracker: CursorTracker[Key] = CursorTracker()
    tracker.catch_up_done(tracker.epoch)
    intake, _ = make_intake(history, handled, tracker, max_messages=50, per_channel=50)
    key = (GUILD_A, 1)
    ids = [live(intake, history, key) for _ in range(20)]
    await asyncio.sleep(0)
    await intake.close()
    advanced = tracker.take_advanced().get(key, 0)
    assert handled and len(handled) < len(ids)
    assert all(i in handled for i in ids if i <= advanced)
    assert not intake.offer(key, 99_999, 99_999)


async def test_a_message_let_go_and_deleted_before_it_is_read_back_does_not_stall_intake() -> None:
    history = History()
    handled: list[int] = []
    tracker: CursorTracker[Key] = CursorTracker()
    tracker.catch_up_done(tracker.epoch)
    intake, _ = make_intake(history, handled, tracker, max_messages=2, per_channel=2)
    key = (GUILD_A, 1)
    ids = [live(intake, history, key) for _ in range(6)]
    history.channels[key].remove(ids[-1])  # a progress message the generator deleted
    await asyncio.wait_for(intake.join(), timeout=10)
    assert handled == ids[:-1]
    assert not intake.behind(key)
    assert tracker.take_advanced() == {key: ids[-2]}
