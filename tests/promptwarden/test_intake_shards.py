"""Catch-up per shard, against SimCord: a shard that starts a new session reads what it missed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import simcord

from discordbot import PromptWardenBot
from tests.helpers import NUDE, screening, world


async def settled(env: simcord.Env, done: Callable[[], bool], timeout: float = 30) -> None:
    """Settle until `done()` holds: a catch-up waits on the database between steps, which
    a single settle does not always wait for."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        await env.settle()
        if done() or loop.time() > deadline:
            return
        await asyncio.sleep(0.02)


@pytest.fixture
def simcord_bot(make_bot: Callable[..., PromptWardenBot]) -> PromptWardenBot:
    return make_bot(shard_count=2, shard_ids=(0, 1))


async def test_a_shard_with_a_new_session_screens_what_it_missed(
    simcord_env: simcord.Env,
) -> None:
    bot = simcord_env.bot
    assert isinstance(bot, PromptWardenBot)
    guild = simcord_env.create_guild("Shard one art", shard_id=1)
    other = simcord_env.create_guild("Shard zero art", shard_id=0)
    channel = guild.create_text_channel("imagine")
    member = guild.add_member(simcord_env.create_user("bob"))
    await bot.storage.add_watched_channel(guild.id, channel.id)
    await bot.storage.set_privacy_config(guild.id, {"reminders_enabled": False})
    screening(bot).states.invalidate(guild.id)
    await simcord_env.settle()

    shard = bot.get_shard(1)
    assert shard is not None
    await shard.disconnect()
    # Posted while shard 1 is away: in the channel's history, never delivered.
    await member.send(channel, NUDE)
    await simcord_env.settle()
    assert [m.content for m in channel.history()] == [NUDE]

    # A new session of that shard only: its READY, after the guilds arrive.
    shard_ready = asyncio.ensure_future(bot.wait_for("shard_ready", check=lambda s: s == 1))
    await shard.reconnect()
    await asyncio.wait_for(shard_ready, timeout=30)
    await settled(simcord_env, lambda: not channel.history())

    assert [m.content for m in channel.history()] == []  # the missed prompt is removed
    incidents = await bot.storage.find_incidents(guild.id)
    assert len(incidents) == 1
    assert await bot.storage.find_incidents(other.id) == []


async def test_a_catch_up_asked_for_while_one_finishes_is_not_lost(
    simcord_env: simcord.Env,
) -> None:
    w = await world(simcord_env)
    backend = simcord_env.backend
    cog = screening(w.bot)
    # Posted while the bot was away: only in the channel's history.
    backend.create_message(w.channel.id, w.member.id, NUDE, broadcast=False)
    later: list[object] = []

    async def on_promptwarden_prompt(message: object, user_id: int) -> None:
        # While catch-up waits for its messages to be handled, another session starts
        # and misses a prompt: that session's catch-up request must be served.
        if not later:
            hidden = backend.create_message(
                w.channel.id, w.member.id, "a naked man", broadcast=False
            )
            later.append(hidden)
            cog.start_catch_up()

    w.bot.add_listener(on_promptwarden_prompt)
    cog.start_catch_up()
    await settled(simcord_env, lambda: len(w.messages()) == 0)

    assert w.messages() == []  # both removed
    assert sorted(i.verdict.value for i in await w.incidents()) == ["block", "block"]
