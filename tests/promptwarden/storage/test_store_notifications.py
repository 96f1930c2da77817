"""Settings-change news on both backends: what lets every process drop its cached copy.

(The shared DM budget and reminders are tested in test_store_privacy.py, on both
backends, and raced between two processes in test_backends_postgres.py.)"""

from __future__ import annotations

from promptwarden.storage import Storage
from tests.helpers import GUILD_A, GUILD_B


async def test_settings_changes_reach_subscribers(storage: Storage) -> None:
    import asyncio

    heard: list[int | None] = []
    changed = asyncio.Event()

    async def listener(guild_id: int | None) -> None:
        heard.append(guild_id)
        changed.set()

    await storage.subscribe_settings_changes(listener)
    await storage.set_modlog_channel(GUILD_A, 42)
    await asyncio.wait_for(changed.wait(), 10)
    changed.clear()
    await storage.set_screening_rules(GUILD_B, {"actions": {"gore": "block"}})
    await asyncio.wait_for(changed.wait(), 10)
    changed.clear()
    await storage.set_enforcement_config(GUILD_A, {"moderators_exempt": False})
    await asyncio.wait_for(changed.wait(), 10)
    changed.clear()
    await storage.set_privacy_config(GUILD_B, {"delete_personal_info": True})
    await asyncio.wait_for(changed.wait(), 10)
    assert heard == [GUILD_A, GUILD_B, GUILD_A, GUILD_B]


async def test_watched_channel_and_generator_bot_changes_reach_subscribers(
    storage: Storage,
) -> None:
    """A `/watch add` in one process must reach the others' caches, like any setting."""
    import asyncio

    heard: asyncio.Queue[int | None] = asyncio.Queue()

    async def listener(guild_id: int | None) -> None:
        heard.put_nowait(guild_id)

    await storage.subscribe_settings_changes(listener)
    await storage.add_watched_channel(GUILD_A, 5)
    assert await asyncio.wait_for(heard.get(), 10) == GUILD_A
    await storage.remove_watched_channel(GUILD_A, 5)
    assert await asyncio.wait_for(heard.get(), 10) == GUILD_A
    await storage.add_generator_bot(GUILD_B, 6)
    assert await asyncio.wait_for(heard.get(), 10) == GUILD_B
    await storage.remove_generator_bot(GUILD_B, 6)
    assert await asyncio.wait_for(heard.get(), 10) == GUILD_B
    assert heard.empty()


async def test_a_local_change_is_heard_once_before_the_write_returns(
    storage: Storage, database: str
) -> None:
    """The cached settings of this process must be dropped before the command that
    changed them answers (the next message follows the new settings), and only once: on
    PostgreSQL the NOTIFY echo of our own write is not a second change."""
    import asyncio

    from promptwarden.storage import open_storage

    heard: list[int | None] = []
    await storage.subscribe_settings_changes(heard.append)
    async with await open_storage(database) as elsewhere:  # another process's view
        seen_there = asyncio.Event()
        await elsewhere.subscribe_settings_changes(lambda _: seen_there.set())

        await storage.set_enforcement_config(GUILD_A, {"moderators_exempt": False})
        assert heard == [GUILD_A]  # already, before any notification round trip

        if database.startswith("postgres"):
            await asyncio.wait_for(seen_there.wait(), 10)  # the NOTIFY has gone out
            await asyncio.sleep(0.2)  # and its echo, had it counted, would be here
        assert heard == [GUILD_A]
