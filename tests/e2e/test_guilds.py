"""One bot process, several guilds: each guild's violations are handled in that guild only.

Two guilds exist when the bot connects (READY lists them, a GUILD_CREATE each); a third
invites it once it is running. One burst is dealt round-robin over their watched channels,
and one member of all three servers breaks the rules once in each.
Read where each guild's moderators would look: the incident log, the deletes Discord
received, and the entries in that guild's own mod-log channel.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from promptwarden.storage import open_storage
from tests.emulator import (
    GOOD_TOKEN,
    MIDJOURNEY_BOT_ID,
    BotProcess,
    Channel,
    Emulator,
    Guild,
    Post,
    User,
)
from tests.emulator.traffic import DELETE_MESSAGE, VIOLATING, ActionLog, Planned, burst
from tests.helpers import DM_BUDGET, outcomes, read_db


@dataclass
class Place:
    """A guild as the bot's database describes it."""

    guild: Guild
    watched: Channel
    modlog: Channel
    members: list[User]


def make_place(emu: Emulator, guild: Guild) -> Place:
    return Place(
        guild=guild,
        watched=emu.add_channel("imagine", guild=guild),
        modlog=emu.add_channel("mod-log", guild=guild),
        members=[emu.add_member(f"member{i}", guild=guild) for i in range(6)],
    )


def configure(database: Path, places: list[Place]) -> None:
    async def write() -> None:
        storage = await open_storage(database)
        async with storage:
            for place in places:
                guild_id = place.guild.id
                await storage.add_watched_channel(guild_id, place.watched.id)
                await storage.set_modlog_channel(guild_id, place.modlog.id)
                await storage.set_screening_rules(guild_id, {"learned": False})
                await storage.set_privacy_config(guild_id, {"dm_per_minute": DM_BUDGET})

    asyncio.run(write())


def incidents_by_guild(database: Path) -> Counter[tuple[int, int]]:
    """(guild id, message id) -> how many incidents it has."""
    rows = read_db(database, "SELECT guild_id, message_id FROM incidents")
    return Counter((int(str(g)), int(str(m))) for g, m in rows)


def test_each_guild_gets_exactly_one_incident_per_violation_in_its_own_channels(
    tmp_path: Path,
) -> None:
    with Emulator() as emu:
        first = make_place(emu, emu.world.guild)
        second = make_place(emu, emu.add_guild("Second Gallery"))
        database = tmp_path / "promptwarden.db"
        env = {**emu.env(), "DISCORD_TOKEN": GOOD_TOKEN, "DATABASE_PATH": str(database)}
        # The third guild's settings are stored before the bot is invited to it.
        third = make_place(emu, emu.add_guild("Third Gallery", joined=False))
        places = [first, second, third]
        configure(database, places)
        everywhere = emu.add_member("everywhere", guild=first.guild)
        for place in (second, third):
            emu.join(everywhere, place.guild)
        theirs = [
            Planned(
                Post(p.watched, everywhere, f"{VIOLATING[0]} #9{n:05d}"),
                f"#9{n:05d}",
                True,
                everywhere,
            )
            for n, p in enumerate(places)
        ]
        with BotProcess(env, tmp_path / "logs") as bot:
            bot.wait_for_log("ready as")
            emu.invite(third.guild)
            planned = guilds_burst(emu, places, 300) + theirs
            ids = emu.post_many(p.post for p in planned)
            expected = {
                (p.post.channel.guild_id, i)
                for p, i in zip(planned, ids, strict=True)
                if p.violating
            }
            assert {g for g, _ in expected} == {p.guild.id for p in places}

            def settled() -> bool:
                found = outcomes(database)
                return all({"delete", "modlog"} <= found.get(i, {}).keys() for _, i in expected)

            emu.wait_until(settled, timeout=60, what=f"actions for {len(expected)} violations")
            assert "Traceback" not in bot.stderr()

        incidents = incidents_by_guild(database)
        assert set(incidents) == expected, "incidents for exactly the violations, in their guild"
        assert all(n == 1 for n in incidents.values()), incidents.most_common(3)
        actions = ActionLog(emu).update()
        found = outcomes(database)
        by_id = dict(zip(ids, planned, strict=True))
        modlogs = {p.modlog.id: p.guild.id for p in places}
        for guild_id, message_id in expected:
            tag = by_id[message_id].tag
            assert len([c for c in actions.deletes[message_id] if c.ok]) == 1, tag
            # The warning went to the member of that guild who prompted.
            assert found[message_id]["dm_warning"] == "done", tag
            dm = emu.world.dm_channels[by_id[message_id].responsible.id]
            assert [c.param("channel_id") for c in actions.dm_posts(tag) if c.ok] == [dm.id]
            # The entry went to this guild's mod-log and to no other guild's.
            entries = [
                c.param("channel_id")
                for c in actions.posts[tag]
                if c.param("channel_id") in modlogs
            ]
            assert [modlogs[c] for c in entries] == [guild_id], (tag, entries)
        # Judged apart in each server: a first strike in each, from nothing.
        strikes = read_db(
            database,
            f"SELECT guild_id, points_before FROM strikes WHERE user_id = {everywhere.id}",
        )
        assert sorted((int(str(g)), b) for g, b in strikes) == sorted(
            (p.guild.id, 0) for p in places
        )
        deleted = {c.param("message_id") for c in emu.calls(DELETE_MESSAGE) if c.ok}
        assert deleted == {i for _, i in expected}, "benign prompts stay, in every guild"


def guilds_burst(emu: Emulator, places: list[Place], count: int) -> list[Planned]:
    """`count` messages dealt to the guilds' watched channels in turn, then one violation
    closing each channel (a channel is handled in order)."""
    channels = [p.watched for p in places]
    members = {p.guild.id: p.members for p in places}
    generator = emu.user(MIDJOURNEY_BOT_ID)
    planned = burst(channels, members, generator, count - len(channels))
    closing = burst(
        channels,
        members,
        generator,
        len(channels),
        violating_share=1.0,
        first_tag=count - len(channels),
    )
    return planned + closing
