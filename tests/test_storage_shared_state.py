"""State every bot process shares, on both backends: DM budgets, reminders, settings news."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from promptwarden.storage import Storage

GUILD_A, GUILD_B = 111111111111111111, 222222222222222222
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def test_dm_budget_allows_per_minute_then_refills_with_time(storage: Storage) -> None:
    taken = [await storage.take_dm_token(GUILD_A, 3, now=T0) for _ in range(5)]
    assert taken == [True, True, True, False, False]
    # 3 a minute: one more token every 20 s, never more than 3 banked.
    assert not await storage.take_dm_token(GUILD_A, 3, now=T0 + timedelta(seconds=19))
    assert await storage.take_dm_token(GUILD_A, 3, now=T0 + timedelta(seconds=21))
    later = T0 + timedelta(hours=1)
    assert [await storage.take_dm_token(GUILD_A, 3, now=later) for _ in range(4)] == [
        True,
        True,
        True,
        False,
    ]


async def test_dm_budgets_are_per_guild_and_zero_means_none(storage: Storage) -> None:
    assert await storage.take_dm_token(GUILD_A, 1, now=T0)
    assert not await storage.take_dm_token(GUILD_A, 1, now=T0)
    assert await storage.take_dm_token(GUILD_B, 1, now=T0)  # B's budget is its own
    assert not await storage.take_dm_token(GUILD_B, 0, now=T0 + timedelta(hours=1))


async def test_a_clock_running_behind_never_mints_tokens(storage: Storage) -> None:
    """Two machines' clocks differ a little; an older `now` must not refill the bucket."""
    assert await storage.take_dm_token(GUILD_A, 1, now=T0)
    assert not await storage.take_dm_token(GUILD_A, 1, now=T0 - timedelta(minutes=5))
    assert not await storage.take_dm_token(GUILD_A, 1, now=T0 + timedelta(seconds=30))
    assert await storage.take_dm_token(GUILD_A, 1, now=T0 + timedelta(seconds=61))


async def test_a_reminder_is_claimed_once_per_member_and_kind(storage: Storage) -> None:
    assert await storage.reminder_sent_at(GUILD_A, 5, "privacy") is None
    assert await storage.mark_reminder_sent(GUILD_A, 5, "privacy", now=T0)
    assert not await storage.mark_reminder_sent(GUILD_A, 5, "privacy", now=T0 + timedelta(1))
    assert await storage.reminder_sent_at(GUILD_A, 5, "privacy") == T0  # the first one stays
    assert await storage.mark_reminder_sent(GUILD_A, 5, "public-channel")
    assert await storage.mark_reminder_sent(GUILD_B, 5, "privacy")


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
    assert heard == [GUILD_A, GUILD_B]
