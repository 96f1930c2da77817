"""The real bot against SimCord's simulated Discord: cogs load, commands register."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import discord
import pytest
import simcord
from discord import app_commands

from cogs.status import LIST_LIMIT
from discordbot import PromptWardenBot, extension_names, required_intents
from promptwarden.storage import LATEST_VERSION


def command_syncs(env: simcord.Env) -> list[simcord.HttpLogEntry]:
    return [r for r in env.http_requests if r.method == "PUT" and r.path.endswith("/commands")]


def admin_and_member(
    env: simcord.Env,
) -> tuple[simcord.GuildHandle, simcord.ChannelHandle, simcord.MemberActor, simcord.MemberActor]:
    guild = env.create_guild("Prompt Art")
    channel = guild.create_text_channel("imagine")
    admins = guild.create_role("Admins", permissions=discord.Permissions(manage_guild=True))
    admin = guild.add_member(env.create_user("ada"), roles=[admins])
    member = guild.add_member(env.create_user("bob"))
    return guild, channel, admin, member


async def test_every_cog_loads_and_commands_are_synced_once(simcord_env: simcord.Env) -> None:
    bot = simcord_env.bot
    assert isinstance(bot, PromptWardenBot)
    assert extension_names() == [
        "cogs.admin",
        "cogs.automod",
        "cogs.enforcement",
        "cogs.guidelines",
        "cogs.incidents",
        "cogs.privacy",
        "cogs.reports",
        "cogs.screening",
        "cogs.stats",
        "cogs.status",
    ]
    assert set(bot.extensions) == set(extension_names())
    assert "promptwarden" in [c.name for c in bot.tree.get_commands()]
    syncs = command_syncs(simcord_env)
    assert len(syncs) == 1
    assert sorted(c["name"] for c in syncs[0].json) == [
        "Report prompt",  # a message context-menu command
        "automod",
        "enforcement",
        "generator-bots",
        "guideline-rules",
        "guidelines",
        "incidents",
        "privacy",
        "promptwarden",
        "reminders",
        "retention",
        "setup",
        "stats",
        "strikes",
        "watch",
    ]
    assert "/guilds/" not in syncs[0].path  # no DEV_GUILD_ID: global


async def test_restart_with_unchanged_commands_does_not_sync_again(
    simcord_env: simcord.Env, make_bot: Callable[..., PromptWardenBot]
) -> None:
    assert len(command_syncs(simcord_env)) == 1
    await simcord_env.restart_bot(make_bot())
    assert len(command_syncs(simcord_env)) == 1
    # And the commands synced by the first run still answer after the restart.
    _, channel, admin, _ = admin_and_member(simcord_env)
    result = await admin.slash(channel, "promptwarden status")
    assert f"Database schema: version {LATEST_VERSION}" in result.response.content


async def test_restart_with_a_changed_tree_syncs(
    simcord_env: simcord.Env, make_bot: Callable[..., PromptWardenBot]
) -> None:
    new_bot = make_bot()

    @new_bot.tree.command(name="ping", description="A command added by a newer version")
    async def ping(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("pong")

    await simcord_env.restart_bot(new_bot)
    syncs = command_syncs(simcord_env)
    assert len(syncs) == 2
    before = {c["name"] for c in syncs[0].json}
    assert {c["name"] for c in syncs[1].json} == before | {"ping"}


async def test_dev_guild_id_syncs_to_that_server_only(
    simcord_env: simcord.Env, make_bot: Callable[..., PromptWardenBot]
) -> None:
    dev = simcord_env.create_guild("Dev server")
    await simcord_env.restart_bot(make_bot(dev_guild_id=dev.id))

    last = command_syncs(simcord_env)[-1]
    assert last.path.endswith(f"/guilds/{dev.id}/commands")
    assert "promptwarden" in [c["name"] for c in last.json]
    owner = dev.add_member(dev.owner)
    result = await owner.slash(dev.create_text_channel("test"), "promptwarden status")
    assert f"Database schema: version {LATEST_VERSION}" in result.response.content


async def test_status_answers_an_admin_privately(simcord_env: simcord.Env) -> None:
    guild, channel, admin, _ = admin_and_member(simcord_env)
    bot = simcord_env.bot
    assert isinstance(bot, PromptWardenBot)
    modlog = guild.create_text_channel("mod-log")
    category = guild.create_category("Generation")
    await bot.storage.set_modlog_channel(guild.id, modlog.id)
    await bot.storage.add_watched_channel(guild.id, channel.id)
    await bot.storage.add_watched_channel(guild.id, category.id, "category")

    result = await admin.slash(channel, "promptwarden status")

    assert result.ephemeral
    text = result.response.content
    assert f"Database schema: version {LATEST_VERSION}" in text
    assert f"Mod-log channel: <#{modlog.id}>" in text
    assert f"- <#{channel.id}>" in text
    assert "- category Generation" in text
    assert "Server permissions: all granted" in text


async def test_status_reports_permissions_the_bot_lacks_in_a_watched_channel(
    simcord_env: simcord.Env,
) -> None:
    guild, _, admin, _ = admin_and_member(simcord_env)
    bot = simcord_env.bot
    assert isinstance(bot, PromptWardenBot) and guild.me is not None
    locked = guild.create_text_channel(
        "locked",
        overwrites={guild.me: discord.PermissionOverwrite(manage_messages=False)},
    )
    await bot.storage.add_watched_channel(guild.id, locked.id)

    result = await admin.slash(locked, "promptwarden status")

    assert f"Missing in <#{locked.id}>: Manage Messages" in result.response.content


async def test_status_stays_short_with_many_watched_channels(simcord_env: simcord.Env) -> None:
    guild, channel, admin, _ = admin_and_member(simcord_env)
    bot = simcord_env.bot
    assert isinstance(bot, PromptWardenBot)
    for number in range(LIST_LIMIT + 5):
        watched = guild.create_text_channel(f"gen-{number}")
        await bot.storage.add_watched_channel(guild.id, watched.id)

    result = await admin.slash(channel, "promptwarden status")

    text = result.response.content
    assert text.count("\n- <#") == LIST_LIMIT
    assert "- and 5 more" in text
    assert len(text) <= 2000


async def test_status_is_hidden_from_members_without_manage_server(
    simcord_env: simcord.Env,
) -> None:
    _, channel, _, member = admin_and_member(simcord_env)
    assert "promptwarden" not in member.available_commands(channel)
    with pytest.raises(simcord.SetupError, match="not visible"):
        await member.slash(channel, "promptwarden status")


async def test_status_refuses_a_member_an_admin_let_see_it(simcord_env: simcord.Env) -> None:
    """Integrations settings can show the command to anyone; the run-time check still holds."""
    guild, channel, _, member = admin_and_member(simcord_env)
    bot = simcord_env.bot
    assert isinstance(bot, PromptWardenBot)
    [command] = [c for c in await bot.tree.fetch_commands() if c.name == "promptwarden"]
    assert command.default_member_permissions == discord.Permissions(manage_guild=True)
    guild.set_command_permissions(command, {member: True})

    result = await member.slash(channel, "promptwarden status")

    assert result.ephemeral
    assert result.response.content == "You need the Manage Server permission to use this."
    errors = simcord_env.errors
    assert len(errors) == 1 and isinstance(errors[0], app_commands.MissingPermissions)


async def test_message_listeners_and_waiters_still_get_every_message(
    simcord_env: simcord.Env,
) -> None:
    """New messages go to the watcher in place (no task per message); anything that asks
    for the event itself, an `on_message` listener or a `wait_for`, still gets it."""
    bot = simcord_env.bot
    _, channel, _, member = admin_and_member(simcord_env)
    heard: list[str] = []

    async def on_message(message: discord.Message) -> None:
        heard.append(message.content)

    bot.add_listener(on_message)
    waiting = asyncio.ensure_future(
        bot.wait_for("message", check=lambda m: m.content == "a dog in the rain")
    )
    await member.send(channel, "a cat on a sofa")
    await member.send(channel, "a dog in the rain")

    assert heard == ["a cat on a sofa", "a dog in the rain"]
    assert (await asyncio.wait_for(waiting, 5)).content == "a dog in the rain"


def test_intents_ask_for_message_content_but_not_members() -> None:
    intents = required_intents()
    assert intents.message_content and intents.guild_messages and intents.guilds
    assert intents.dm_messages
    assert not intents.members and not intents.presences
