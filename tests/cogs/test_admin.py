"""`/setup`, `/watch` and `/generator-bots` through the real bot and SimCord.

Each test plays what a person does in the Discord client and checks what they would see,
and what the database then holds.
"""

from __future__ import annotations

import discord
import simcord

from tests.helpers import GORE, NUDE, Server, text

# ---------------------------------------------------------------- /setup, /watch, /generator-bots


async def test_setup_sets_channels_and_says_how_to_fix_missing_permissions(
    simcord_env: simcord.Env,
) -> None:
    s = Server(simcord_env)
    me = s.guild.me
    assert me is not None
    locked = s.guild.create_text_channel(
        "locked-gen", overwrites={me: discord.PermissionOverwrite(manage_messages=False)}
    )

    result = await s.slash(s.admin, "setup", modlog=s.modlog, watch_channel=locked)

    assert result.ephemeral
    body = text(result)
    assert f"Mod-log channel set to <#{s.modlog.id}>" in body
    assert f"Now watching <#{locked.id}>" in body
    assert f"<#{locked.id}>: **Manage Messages** is denied here" in body
    assert "Fix: Edit Channel > Permissions" in body
    assert await s.storage.get_modlog_channel(s.guild.id) == s.modlog.id
    [watched] = await s.storage.list_watched_channels(s.guild.id)
    assert watched.channel_id == locked.id

    # Takes effect at once: the next prompt there is screened.
    await s.member.send(locked, GORE)
    assert len(await s.storage.find_incidents(s.guild.id)) == 1


async def test_setup_without_options_reports_what_is_missing(simcord_env: simcord.Env) -> None:
    s = Server(simcord_env)
    body = text(await s.slash(s.admin, "setup"))
    assert "Mod-log channel: **not set**" in body
    assert "Watched: **nothing yet**" in body
    assert "everything I need is granted" in body


async def test_watch_add_list_remove_a_category(simcord_env: simcord.Env) -> None:
    s = Server(simcord_env)
    category = s.guild.create_category("Generation")
    inside = s.guild.create_text_channel("gen-1", category=category)

    assert "Now watching category **Generation**" in text(
        await s.slash(s.admin, "watch add", target=category)
    )
    assert "Already watching" in text(await s.slash(s.admin, "watch add", target=category))
    assert "category **Generation**" in text(await s.slash(s.admin, "watch list"))
    await s.member.send(inside, NUDE)
    assert [m.content for m in inside.history()] == []  # removed at once

    assert "Stopped watching" in text(await s.slash(s.admin, "watch remove", target=category))
    assert "Nothing is watched yet" in text(await s.slash(s.admin, "watch list"))
    await s.member.send(inside, NUDE)
    assert [m.content for m in inside.history()] == [NUDE]


async def test_generator_bots_by_id(simcord_env: simcord.Env) -> None:
    s = Server(simcord_env)
    await s.watch()
    bad = await s.slash(s.admin, "generator-bots add", bot_id="midjourney")
    assert "`midjourney` is not a user id" in text(bad)
    assert await s.storage.list_generator_bots(s.guild.id) == []

    other = s.guild.add_member(simcord_env.create_user("Other Gen", bot=True))
    added = await s.slash(s.admin, "generator-bots add", bot_id=str(other.id))
    assert f"Prompts posted by <@{other.id}>" in text(added)
    listed = text(await s.slash(s.admin, "generator-bots list"))
    assert "Midjourney Bot (936929561302675456), built in" in listed and str(other.id) in listed
    builtin = await s.slash(s.admin, "generator-bots remove", bot_id="936929561302675456")
    assert "built in and cannot be removed" in text(builtin)

    await other.send(s.channel, f"**{GORE}** - <@{s.member.id}> (fast)")
    [incident] = await s.storage.find_incidents(s.guild.id)
    assert incident.user_id == s.member.id

    assert f"Removed <@{other.id}>" in text(
        await s.slash(s.admin, "generator-bots remove", bot_id=str(other.id))
    )
