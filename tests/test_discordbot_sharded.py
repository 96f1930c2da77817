"""The bot as one process of a sharded cluster, against SimCord: cogs, answers, caches."""

from __future__ import annotations

from collections.abc import Callable

import discord
import pytest
import simcord

from discordbot import PromptWardenBot, extension_names
from promptwarden.storage import LATEST_VERSION, open_storage
from tests.helpers import needs_postgres


class RecordingCache:
    """A per-guild cache as a cog would keep one; it notes what it was told to drop."""

    def __init__(self) -> None:
        self.forgotten: list[int] = []
        self.cleared = 0

    def forget(self, guild_id: int) -> None:
        self.forgotten.append(guild_id)

    def clear(self) -> None:
        self.cleared += 1


def admin_in(env: simcord.Env, *, shard_id: int) -> tuple[simcord.GuildHandle, object, object]:
    guild = env.create_guild(f"Shard {shard_id} art", shard_id=shard_id)
    channel = guild.create_text_channel("imagine")
    admins = guild.create_role("Admins", permissions=discord.Permissions(manage_guild=True))
    admin = guild.add_member(env.create_user(f"ada{shard_id}"), roles=[admins])
    return guild, channel, admin


@pytest.fixture
def simcord_bot(make_bot: Callable[..., PromptWardenBot]) -> PromptWardenBot:
    return make_bot(shard_count=4, shard_ids=(1, 3))


async def test_a_bot_with_a_shard_range_loads_its_cogs_and_answers_on_each_shard(
    simcord_env: simcord.Env,
) -> None:
    bot = simcord_env.bot
    assert isinstance(bot, discord.AutoShardedClient) and isinstance(bot, PromptWardenBot)
    assert bot.shard_count == 4 and sorted(bot.shards) == [1, 3]
    assert set(bot.extensions) == set(extension_names())
    for shard_id in (1, 3):
        guild, channel, admin = admin_in(simcord_env, shard_id=shard_id)
        result = await admin.slash(channel, "promptwarden status")  # type: ignore[attr-defined]
        assert f"Database schema: version {LATEST_VERSION}" in result.response.content
        assert bot.get_guild(guild.id) is not None
        assert bot.get_guild(guild.id).shard_id == shard_id  # type: ignore[union-attr]


async def test_guilds_of_other_processes_shards_never_reach_this_one(
    simcord_env: simcord.Env,
) -> None:
    bot = simcord_env.bot
    theirs = simcord_env.create_guild("Served elsewhere", shard_id=0)
    ours = simcord_env.create_guild("Served here", shard_id=3)
    await simcord_env.settle()
    assert bot.get_guild(ours.id) is not None
    assert bot.get_guild(theirs.id) is None


async def test_a_settings_change_drops_the_guilds_cached_config(simcord_env: simcord.Env) -> None:
    bot = simcord_env.bot
    assert isinstance(bot, PromptWardenBot)
    cache = RecordingCache()
    bot.register_guild_cache(cache)
    events: list[int] = []

    async def on_promptwarden_settings_changed(guild_id: int) -> None:
        events.append(guild_id)

    bot.add_listener(on_promptwarden_settings_changed)
    guild = simcord_env.create_guild("Prompt Art", shard_id=1)

    await bot.storage.set_screening_rules(guild.id, {"actions": {"gore": "block"}})
    await simcord_env.settle()

    assert cache.forgotten == [guild.id]
    assert events == [guild.id]  # what cogs listen to


@needs_postgres
async def test_another_process_changing_a_setting_reaches_the_running_bot(
    postgres_url: str, make_bot: Callable[..., PromptWardenBot]
) -> None:
    """Process A runs shard 0; process B (here, a second pool) changes a guild's rules."""
    import asyncio

    bot = make_bot(database_url=postgres_url, shard_count=2, shard_ids=(0,))
    dropped: asyncio.Queue[int | None] = asyncio.Queue()

    class QueueCache:
        def forget(self, guild_id: int) -> None:
            dropped.put_nowait(guild_id)

        def clear(self) -> None:
            dropped.put_nowait(None)

    bot.register_guild_cache(QueueCache())
    async with simcord.run(bot) as env:
        guild = env.create_guild("Prompt Art", shard_id=0)
        async with await open_storage(postgres_url) as other_process:
            await other_process.set_screening_rules(guild.id, {"actions": {"hate": "block"}})
        assert await asyncio.wait_for(dropped.get(), 10) == guild.id
        assert await bot.storage.get_screening_rules(guild.id) == {"actions": {"hate": "block"}}
