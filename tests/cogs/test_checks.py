"""Who may press the mod-log buttons and run the moderator commands, through the real bot
and SimCord's simulated Discord (which enforces role order on the bot's own calls).

Each test plays a member whose permissions fall short in one way and checks what they
would see (a private refusal naming what is missing) and that nothing else happened: no
timeout on the target, the message still there, the incident untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import discord
import pytest
import simcord
from discord import app_commands
from simcord.actors import MemberActor

from discordbot import PromptWardenBot
from promptwarden.permissions import Facts, Standing, refusal
from promptwarden.storage import Incident
from tests.helpers import BOTH_BOT_BACKENDS, GORE, NUDE, Server, World, field, screening, text

MM = "manage_messages"
MOD = "moderate_members"


@dataclass
class Staff:
    w: World
    log_reader: simcord.MemberActor  # Manage Messages in the mod-log channel only
    helper: simcord.MemberActor  # Manage Messages server-wide, no Moderate Members
    junior: simcord.MemberActor  # Manage Messages and Moderate Members server-wide
    senior: simcord.MemberActor  # "Senior staff", above the junior
    senior_role: simcord.RoleHandle


async def staff(env: simcord.Env) -> Staff:
    """A server whose roles run, bottom to top: @everyone, Log readers, Helpers, Mods,
    Senior staff, the bot's role (new roles go in just above @everyone)."""
    bot = env.bot
    assert isinstance(bot, PromptWardenBot)
    guild = env.create_guild("Prompt Art")
    # Without Manage Messages: moderators' own prompts are not screened by default.
    senior_role = guild.create_role(
        "Senior staff", permissions=discord.Permissions(kick_members=True)
    )
    mods = guild.create_role(
        "Mods", permissions=discord.Permissions(manage_messages=True, moderate_members=True)
    )
    helpers = guild.create_role("Helpers", permissions=discord.Permissions(manage_messages=True))
    readers = guild.create_role("Log readers")
    channel = guild.create_text_channel("imagine")
    modlog = guild.create_text_channel(
        "mod-log", overwrites={readers: discord.PermissionOverwrite(manage_messages=True)}
    )
    member = guild.add_member(env.create_user("bob"))
    junior = guild.add_member(env.create_user("mo"), roles=[mods])
    generator = guild.add_member(env.create_user("Midjourney Bot", bot=True))
    await bot.storage.add_watched_channel(guild.id, channel.id)
    await bot.storage.set_modlog_channel(guild.id, modlog.id)
    await bot.storage.set_privacy_config(guild.id, {"reminders_enabled": False})
    screening(bot).states.invalidate(guild.id)
    w = World(env, bot, guild, channel, modlog, member, junior, generator)
    return Staff(
        w,
        log_reader=guild.add_member(env.create_user("lou"), roles=[readers]),
        helper=guild.add_member(env.create_user("hal"), roles=[helpers]),
        junior=junior,
        senior=guild.add_member(env.create_user("sue"), roles=[senior_role]),
        senior_role=senior_role,
    )


async def incident_of(s: Staff, who: simcord.MemberActor, prompt: str = GORE) -> Incident:
    """`who` posts a violating prompt; returns its incident."""
    await who.send(s.w.channel, prompt)
    return (await s.w.incidents())[-1]


def entry(s: Staff, incident: Incident) -> discord.Message:
    return next(
        m
        for m in s.w.modlog_entries()
        if (m.embeds[0].title or "").startswith(f"Incident #{incident.id} ")
    )


async def press(s: Staff, who: simcord.MemberActor, action: str, incident: Incident) -> str:
    """`who` presses a mod-log button; returns the private answer they got (asserting it
    was private)."""
    result = await who.click(entry(s, incident), custom_id=f"pw:incident:{action}:{incident.id}")
    if result.followups:
        [answer] = result.followups
        assert answer.ephemeral
        return str(answer.content)
    assert result.ephemeral and result.response is not None, "the refusal was not private"
    return str(result.response.content)


async def nothing_done(s: Staff, incident: Incident) -> None:
    stored = await s.w.bot.storage.get_incident(s.w.guild.id, incident.id)
    assert stored is not None and stored.status == "open"
    assert await s.w.bot.storage.list_modlog_presses(s.w.guild.id, incident.id) == []
    actions = {
        r.action for r in await s.w.bot.storage.list_action_outcomes(s.w.guild.id, incident.id)
    }
    assert not actions & {"manual_timeout", "manual_delete", "timeout_lifted"}
    assert all(f.name != "Moderator actions" for f in entry(s, incident).embeds[0].fields)


# ---------------------------------------------------------------- the mod-log buttons


@BOTH_BOT_BACKENDS
async def test_manage_messages_in_the_mod_log_alone_cannot_time_out(
    simcord_env: simcord.Env,
) -> None:
    s = await staff(simcord_env)
    incident = await incident_of(s, s.w.member)

    answer = await press(s, s.log_reader, "timeout", incident)

    assert "Moderate Members" in answer
    assert s.w.timed_out_until(s.w.member) is None
    await nothing_done(s, incident)


async def test_manage_messages_in_the_mod_log_alone_cannot_dismiss_or_delete(
    simcord_env: simcord.Env,
) -> None:
    s = await staff(simcord_env)
    incident = await incident_of(s, s.w.member)  # a warning: the prompt stays up

    assert "Manage Messages" in await press(s, s.log_reader, "dismiss", incident)
    assert "Manage Messages" in await press(s, s.log_reader, "uphold", incident)
    answer = await press(s, s.log_reader, "delete", incident)

    assert "Manage Messages" in answer and "channel of the message" in answer
    assert GORE in s.w.messages()
    await nothing_done(s, incident)


async def test_staff_above_the_presser_are_not_timed_out(simcord_env: simcord.Env) -> None:
    s = await staff(simcord_env)
    incident = await incident_of(s, s.senior)

    answer = await press(s, s.junior, "timeout", incident)

    assert "highest role is not below yours" in answer
    assert s.w.timed_out_until(s.senior) is None
    await nothing_done(s, incident)


async def test_a_moderator_times_out_a_member_below_them(simcord_env: simcord.Env) -> None:
    s = await staff(simcord_env)
    incident = await incident_of(s, s.w.member)

    await s.junior.click(entry(s, incident), custom_id=f"pw:incident:timeout:{incident.id}")

    assert s.w.timed_out_until(s.w.member) is not None
    actions = field(entry(s, incident).embeds[0], "Moderator actions")
    assert f"Time out 1 h by <@{s.junior.id}>: done" in actions


async def test_a_member_that_cannot_be_read_is_not_timed_out(simcord_env: simcord.Env) -> None:
    """The role check fails closed: no hierarchy known, no timeout."""
    s = await staff(simcord_env)
    incident = await incident_of(s, s.senior)
    simcord_env.inject_error(
        "GET", f"/guilds/{s.w.guild.id}/members/{s.senior.id}", status=500, message="oops"
    )

    answer = await press(s, s.junior, "timeout", incident)

    assert answer.startswith("I could not read this member's roles from Discord")
    assert s.w.timed_out_until(s.senior) is None
    await nothing_done(s, incident)


async def test_the_bot_says_when_its_own_role_is_too_low(simcord_env: simcord.Env) -> None:
    """The owner may act on anyone, but the bot cannot time out a role above its own."""
    s = await staff(simcord_env)
    backend = simcord_env.backend
    bot_role = max(backend.guilds[s.w.guild.id].roles.values(), key=lambda r: r.position)
    backend.edit_role(s.w.guild.id, s.senior_role.id, {"position": bot_role.position + 1})
    await simcord_env.settle()
    incident = await incident_of(s, s.senior)
    owner = MemberActor(simcord_env, s.w.guild, s.w.guild.owner)

    answer = await press(s, owner, "timeout", incident)

    assert "their highest role is not below mine" in answer
    assert s.w.timed_out_until(s.senior) is None
    await nothing_done(s, incident)


async def test_the_bot_says_when_it_lacks_moderate_members(simcord_env: simcord.Env) -> None:
    s = await staff(simcord_env)
    guild = s.w.guild
    me = guild.me
    assert me is not None
    without = me.top_role.permissions
    without.moderate_members = False
    simcord_env.backend.edit_role(guild.id, me.top_role.id, {"permissions": without.value})
    await simcord_env.settle()
    incident = await incident_of(s, s.w.member)

    answer = await press(s, s.junior, "timeout", incident)

    assert answer.startswith("I need the **Moderate Members** permission to time this member out")
    assert s.w.timed_out_until(s.w.member) is None
    await nothing_done(s, incident)


@BOTH_BOT_BACKENDS
async def test_dismissing_what_earned_a_timeout_needs_moderate_members(
    simcord_env: simcord.Env,
) -> None:
    s = await staff(simcord_env)
    await incident_of(s, s.w.member, NUDE)  # block: 2 points
    earned = await incident_of(s, s.w.member)  # warn: 3 points, an hour's timeout
    assert s.w.timed_out_until(s.w.member) is not None

    answer = await press(s, s.helper, "dismiss", earned)

    assert "Moderate Members" in answer and "lift this member's timeout" in answer
    assert s.w.timed_out_until(s.w.member) is not None
    await nothing_done(s, earned)
    by_command = await s.helper.slash(
        s.w.channel, "incidents resolve", incident_id=earned.id, outcome="dismissed"
    )
    # Acknowledged first (the member was read from Discord), answered privately.
    assert by_command.ephemeral and "lift this member's timeout" in by_command.response.content
    await nothing_done(s, earned)
    # A moderator who may lift it does, and the strike goes with the dismissal.
    await s.junior.click(entry(s, earned), custom_id=f"pw:incident:dismiss:{earned.id}")
    assert s.w.timed_out_until(s.w.member) is None
    assert "timeout lifted" in field(entry(s, earned).embeds[0], "Moderator actions")


async def test_dismissing_a_false_positive_needs_only_manage_messages(
    simcord_env: simcord.Env,
) -> None:
    s = await staff(simcord_env)
    incident = await incident_of(s, s.w.member)

    await s.helper.click(entry(s, incident), custom_id=f"pw:incident:dismiss:{incident.id}")

    stored = await s.w.bot.storage.get_incident(s.w.guild.id, incident.id)
    assert stored is not None and stored.status == "dismissed"


async def test_accepting_an_appeal_that_lifts_a_timeout_needs_moderate_members(
    simcord_env: simcord.Env,
) -> None:
    s = await staff(simcord_env)
    await incident_of(s, s.w.member, NUDE)  # block: 2 points
    earned = await incident_of(s, s.w.member)  # warn: 3 points, an hour's timeout
    warning = s.w.dms()[-1]
    shown = await s.w.member.user.click(
        warning, custom_id=f"pw:appeal:open:{s.w.guild.id}:{earned.id}"
    )
    await s.w.member.user.submit_modal(shown, {"reason": "A museum painting."})
    [appeal] = await s.w.bot.storage.list_appeals(s.w.guild.id, earned.id)
    appeal_entry = s.w.modlog_entries()[-1]

    result = await s.helper.click(appeal_entry, custom_id=f"pw:appeal:accept:{appeal.id}")

    answer = result.followups[0] if result.followups else result.response
    assert answer.ephemeral and "Moderate Members" in answer.content
    stored = await s.w.bot.storage.get_appeal(s.w.guild.id, appeal.id)
    assert stored is not None and stored.status == "open"
    assert s.w.timed_out_until(s.w.member) is not None
    # Rejecting lifts nothing: Manage Messages is enough.
    await s.helper.click(s.w.modlog_entries()[-1], custom_id=f"pw:appeal:reject:{appeal.id}")
    stored = await s.w.bot.storage.get_appeal(s.w.guild.id, appeal.id)
    assert stored is not None and stored.status == "rejected"


async def test_warning_from_the_queue_needs_a_member_below_the_presser(
    simcord_env: simcord.Env,
) -> None:
    """A warning adds a strike, which can reach a timeout: staff above are out of reach."""
    s = await staff(simcord_env)
    await s.w.bot.storage.set_screening_rules(s.w.guild.id, {"actions": {"violence": "review"}})
    s.w.bot.dispatch("promptwarden_settings_changed", s.w.guild.id)
    await simcord_env.settle()
    incident = await incident_of(s, s.senior)
    queue = await s.junior.slash(s.w.channel, "incidents queue")

    answer = await press_queue(s.junior, queue.response.message, "warn", incident)

    assert "You cannot warn this member" in answer
    assert s.senior.user.dm_channel.history() == []
    assert await s.w.bot.storage.list_strikes(s.w.guild.id, s.senior.id) == []
    await nothing_done(s, incident)


async def press_queue(
    who: simcord.MemberActor, message: discord.Message, action: str, incident: Incident
) -> str:
    result = await who.click(message, custom_id=f"pw:queue:{action}:{incident.id}")
    answer = result.followups[0] if result.followups else result.response
    assert answer is not None and answer.ephemeral, "the refusal was not private"
    return str(answer.content)


# ---------------------------------------------------------------- commands


async def test_a_channel_overwrite_does_not_make_a_moderator(simcord_env: simcord.Env) -> None:
    """Manage Messages granted in one channel lets Discord offer the command there, but
    the bot judges the member's roles server-wide."""
    s = await staff(simcord_env)
    incident = await incident_of(s, s.w.member)

    result = await s.log_reader.slash(
        s.w.modlog, "incidents resolve", incident_id=incident.id, outcome="dismissed"
    )

    assert result.ephemeral
    assert result.response.content == "You need the Manage Messages permission to use this."
    assert isinstance(simcord_env.errors[-1], app_commands.MissingPermissions)
    await nothing_done(s, incident)


@BOTH_BOT_BACKENDS
async def test_pardon_needs_moderate_members_and_a_member_below(simcord_env: simcord.Env) -> None:
    s = await staff(simcord_env)
    await incident_of(s, s.w.member)
    await incident_of(s, s.senior)

    helper = await s.helper.slash(s.w.channel, "strikes pardon", user=s.w.member)
    junior = await s.junior.slash(s.w.channel, "strikes pardon", user=s.senior)

    assert helper.ephemeral and "Moderate Members" in helper.response.content
    assert junior.ephemeral and "highest role is not below yours" in junior.response.content
    for who in (s.w.member, s.senior):
        assert [x.revoked_at for x in await s.w.bot.storage.list_strikes(s.w.guild.id, who.id)] == [
            None
        ]
    done = await s.junior.slash(s.w.channel, "strikes pardon", user=s.w.member)
    assert "Pardoned" in (done.followups[0].content if done.followups else done.response.content)


# ---------------------------------------------------------------- the rules themselves


def _standing(*perms: str, top: int = 1, owner: bool = False) -> Standing:
    return Standing(frozenset(perms), top, owner)


BOT = _standing(MM, MOD, top=10)


def test_administrator_holds_every_permission() -> None:
    facts = Facts(_standing("administrator", top=5), BOT, _standing(top=1))
    assert refusal("timeout", facts) is None
    assert refusal("pardon", facts) is None


def test_the_owner_acts_on_any_member_the_bot_can_reach() -> None:
    owner = _standing(MM, MOD, top=0, owner=True)
    assert refusal("timeout", Facts(owner, BOT, _standing(top=9))) is None
    assert refusal("warn", Facts(owner, BOT, _standing(top=9))) is None
    nobody_times_out_the_owner = Facts(_standing(MM, MOD, top=9), BOT, _standing(owner=True))
    assert refusal("timeout", nobody_times_out_the_owner) is not None


def test_equal_top_roles_cannot_act_on_each_other() -> None:
    peers = Facts(_standing(MM, MOD, top=4), BOT, _standing(top=4))
    assert "not below yours" in (refusal("timeout", peers) or "")
    assert "not below yours" in (refusal("warn", peers) or "")


def test_a_dismissal_that_lifts_nothing_needs_no_role_check() -> None:
    below = Facts(_standing(MM, top=2), BOT, _standing(top=5))
    assert refusal("dismiss", below) is None
    assert "Moderate Members" in (
        refusal("dismiss", Facts(below.presser, BOT, below.target, lifts_timeout=True)) or ""
    )
    assert refusal("appeal_reject", below) is None


def test_delete_judges_the_channel_of_the_message() -> None:
    denied_there = Facts(
        _standing(MM), BOT, presser_in_channel=frozenset(), bot_in_channel=frozenset({MM})
    )
    assert "channel of the message" in (refusal("delete", denied_there) or "")
    allowed_there = Facts(
        _standing(), BOT, presser_in_channel=frozenset({MM}), bot_in_channel=frozenset({MM})
    )
    assert refusal("delete", allowed_there) is None
    bot_denied = Facts(
        _standing(MM), BOT, presser_in_channel=frozenset({MM}), bot_in_channel=frozenset()
    )
    assert (refusal("delete", bot_denied) or "").startswith("I need")


# ---------------------------------------------------------------- slash commands for admins


@pytest.mark.parametrize(
    "command", ["setup", "watch list", "generator-bots list", "guideline-rules show"]
)
async def test_admin_commands_are_hidden_from_moderators_and_members(
    simcord_env: simcord.Env, command: str
) -> None:
    s = Server(simcord_env)
    assert command not in s.member.available_commands(s.channel)
    assert command not in s.moderator.available_commands(s.channel)
    assert command in s.admin.available_commands(s.channel)
    with pytest.raises(simcord.SetupError, match="not visible"):
        await s.slash(s.moderator, command)


@pytest.mark.parametrize(
    ("command", "needed", "options"),
    [
        ("incidents list", "Manage Messages", {}),
        ("strikes show", "Manage Messages", {"user": None}),
        ("stats", "Manage Messages", {}),
        ("guideline-rules show", "Manage Server", {}),
        ("watch list", "Manage Server", {}),
    ],
)
async def test_a_member_shown_a_command_is_still_refused_at_run_time(
    simcord_env: simcord.Env, command: str, needed: str, options: dict[str, Any]
) -> None:
    s = Server(simcord_env)
    top = command.split()[0]
    [app_command] = [c for c in await s.bot.tree.fetch_commands() if c.name == top]
    s.guild.set_command_permissions(app_command, {s.member: True})
    if "user" in options:
        options = {"user": s.member}

    result = await s.slash(s.member, command, **options)

    assert result.ephemeral
    assert text(result) == f"You need the {needed} permission to use this."
    assert isinstance(simcord_env.errors[-1], app_commands.MissingPermissions)
