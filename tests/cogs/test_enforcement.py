"""`/enforcement` and the `/guideline-rules set-severity|learned` commands through the real
bot and SimCord: what the admin reads, and what the next prompt meets."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import discord
import pytest
import simcord
from discord import app_commands

from tests.helpers import GORE, NUDE, Server, text


def dms(who: simcord.MemberActor) -> list[discord.Message]:
    return who.user.dm_channel.history()


async def config(s: Server) -> dict[str, Any]:
    stored = await s.storage.get_enforcement_config(s.guild.id)
    assert stored is not None
    return dict(stored)


@pytest.mark.parametrize(
    "command", ["enforcement show", "enforcement exempt-role add", "enforcement timeouts"]
)
async def test_enforcement_is_for_admins_only(simcord_env: simcord.Env, command: str) -> None:
    s = Server(simcord_env)
    assert command in s.admin.available_commands(s.channel)
    assert command not in s.moderator.available_commands(s.channel)
    assert command not in s.member.available_commands(s.channel)
    # Shown to a member by a server override: still refused when it runs.
    [app_command] = [c for c in await s.bot.tree.fetch_commands() if c.name == "enforcement"]
    s.guild.set_command_permissions(app_command, {s.member: True})
    result = await s.slash(s.member, "enforcement show")
    assert result.ephemeral
    assert text(result) == "You need the Manage Server permission to use this."
    assert isinstance(simcord_env.errors[-1], app_commands.MissingPermissions)


async def test_show_gives_the_effective_settings(simcord_env: simcord.Env) -> None:
    s = Server(simcord_env)
    result = await s.slash(s.admin, "enforcement show")
    assert result.ephemeral
    body = text(result)
    assert "Moderators (Manage Messages) exempt: on" in body
    assert "Strike points: warning 1, block 2" in body and "counting for 30 days" in body
    assert "Timeouts: 3=1h,5=1d" in body
    assert "Delete prompts with personal information: off" in body
    assert "Catch-up after downtime: 24 hours" in body
    assert "Exempt roles: none" in body and "Exempt channels: none" in body


async def test_an_exempt_role_and_channel_apply_to_the_next_prompt(
    simcord_env: simcord.Env,
) -> None:
    s = Server(simcord_env)
    await s.watch()
    artists = s.guild.create_role("Trusted artists")
    trusted = s.guild.add_member(simcord_env.create_user("tia"), roles=[artists])
    sandbox = s.guild.create_text_channel("sandbox")
    await s.storage.add_watched_channel(s.guild.id, sandbox.id)

    added = await s.slash(s.admin, "enforcement exempt-role add", role=artists)
    assert added.ephemeral and f"<@&{artists.id}>" in text(added) and "exempt" in text(added)
    assert "now exempt" in text(
        await s.slash(s.admin, "enforcement exempt-channel add", channel=sandbox)
    )
    body = text(await s.slash(s.admin, "enforcement show"))
    assert f"Exempt roles: <@&{artists.id}>" in body
    assert f"Exempt channels: <#{sandbox.id}>" in body

    await trusted.send(s.channel, NUDE)
    await s.member.send(sandbox, NUDE)
    assert [m.content for m in s.channel.history()] == [NUDE]
    assert [m.content for m in sandbox.history()] == [NUDE]
    assert await s.storage.find_incidents(s.guild.id) == []

    await s.slash(s.admin, "enforcement exempt-role remove", role=artists)
    await trusted.send(s.channel, NUDE)
    assert [m.content for m in s.channel.history()] == [NUDE]  # the new one is removed
    assert len(await s.storage.find_incidents(s.guild.id)) == 1


async def test_moderators_can_be_screened_and_personal_info_deleted(
    simcord_env: simcord.Env,
) -> None:
    s = Server(simcord_env)
    await s.watch()
    result = await s.slash(s.admin, "enforcement moderators-exempt", setting="off")
    assert "now screened like everyone" in text(result)
    await s.moderator.send(s.channel, NUDE)
    [incident] = await s.storage.find_incidents(s.guild.id)
    assert incident.user_id == s.moderator.id

    result = await s.slash(s.admin, "enforcement delete-personal-info", setting="on")
    assert "deleted, and the member told why" in text(result)
    await s.member.send(s.channel, "me, mail bob@example.com")
    assert "me, mail bob@example.com" not in [m.content for m in s.channel.history()]
    assert (await config(s))["delete_personal_info"] is True


async def test_strikes_and_timeouts_drive_the_next_timeout(simcord_env: simcord.Env) -> None:
    s = Server(simcord_env)
    await s.watch()
    saved = await s.slash(
        s.admin, "enforcement strikes", points_warn=2, points_block=3, window_days=7
    )
    assert "a warning adds 2 point(s), a block 3; strikes count for 7 days" in text(saved)
    saved = await s.slash(s.admin, "enforcement timeouts", thresholds="2=30m,6=2d")
    assert text(saved) == "Saved timeouts: 2 points: 30m, 6 points: 2d."

    await s.member.send(s.channel, GORE)  # a warning: 2 points, past the first threshold

    until = simcord_env.backend.guilds[s.guild.id].members[s.member.id].timed_out_until
    assert until is not None
    assert discord.utils.parse_time(until) - simcord_env.now() == timedelta(minutes=30)
    assert "2 active strike point(s) in the last 7 days" in str(dms(s.member)[-1].embeds[0].fields)

    off = await s.slash(s.admin, "enforcement timeouts", thresholds="none")
    assert off.ephemeral and "never time anyone out" in text(off)
    assert (await config(s))["strike_policy"]["thresholds"] == []


@pytest.mark.parametrize(
    ("command", "options", "says"),
    [
        ("enforcement timeouts", {"thresholds": "3 = one hour"}, "'one hour' is not a duration"),
        ("enforcement timeouts", {"thresholds": "3=1h,2=40d"}, "at most 28 days"),
        ("enforcement timeouts", {"thresholds": "1h"}, "write e.g. 3=1h,5=1d"),
        ("enforcement catch-up", {"hours": 400}, "catch-up must be 0 to 336 hours"),
        (
            "enforcement strikes",
            {"points_warn": 1, "points_block": 2, "window_days": 0},
            "the window must be 1 to 365 days",
        ),
    ],
)
async def test_bad_settings_are_refused_and_nothing_changes(
    simcord_env: simcord.Env, command: str, options: dict[str, Any], says: str
) -> None:
    s = Server(simcord_env)
    await s.slash(s.admin, "enforcement catch-up", hours=12)
    before = await config(s)

    result = await s.slash(s.admin, command, **options)

    assert result.ephemeral
    assert text(result).startswith("Not saved: ") and says in text(result)
    assert text(result).endswith("Nothing was changed.")
    assert await config(s) == before


async def test_catch_up_hours_are_saved(simcord_env: simcord.Env) -> None:
    s = Server(simcord_env)
    result = await s.slash(s.admin, "enforcement catch-up", hours=48)
    assert "prompts of the last 48 hour(s) are screened" in text(result)
    assert (await config(s))["catchup_hours"] == 48
    assert "Catch-up after downtime: 48 hours" in text(await s.slash(s.admin, "enforcement show"))
    result = await s.slash(s.admin, "enforcement dm-failure-notice", setting="off")
    assert "nothing is said" in text(result) and (await config(s))["dm_failure_notice"] is False


# ---------------------------------------------------------------- /guideline-rules


async def test_set_severity_changes_what_a_category_earns(simcord_env: simcord.Env) -> None:
    s = Server(simcord_env)
    await s.watch()
    result = await s.slash(
        s.admin, "guideline-rules set-severity", category="violence", severity="high"
    )
    assert result.ephemeral and text(result) == "Saved: **violence** matches now count as **high**."
    assert "Severity overrides: violence: high" in text(
        await s.slash(s.admin, "guideline-rules show")
    )

    await s.member.send(s.channel, GORE)  # medium (warn) by default; now high: removed
    assert [m.content for m in s.channel.history()] == []

    bad = await s.slash(s.admin, "guideline-rules set-severity", category="gore", severity="high")
    assert text(bad).startswith("Not saved: unknown category 'gore'")
    reset = await s.slash(
        s.admin, "guideline-rules set-severity", category="violence", severity="default"
    )
    assert "keep each term's own severity" in text(reset)
    assert (await s.storage.get_screening_rules(s.guild.id))["severity"] == {}


async def test_the_learned_tier_turns_off_and_on(simcord_env: simcord.Env) -> None:
    s = Server(simcord_env)
    off = await s.slash(s.admin, "guideline-rules learned", setting="off")
    assert off.ephemeral and "learned tier is off" in text(off)
    assert (await s.storage.get_screening_rules(s.guild.id))["learned"] is False
    assert "Learned tier (review by moderators): off" in text(
        await s.slash(s.admin, "guideline-rules show")
    )
    on = await s.slash(s.admin, "guideline-rules learned", setting="on")
    assert "`/incidents queue`" in text(on)
    assert (await s.storage.get_screening_rules(s.guild.id))["learned"] is True
    assert "guideline-rules learned" not in s.moderator.available_commands(s.channel)
