"""Settings-change news on both backends: what lets every process drop its cached copy.

(The shared DM budget and reminders are tested in test_storage_privacy.py, on both
backends, and raced between two processes in test_postgres.py.)"""

from __future__ import annotations

from promptwarden.storage import Storage

GUILD_A, GUILD_B = 111111111111111111, 222222222222222222


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
