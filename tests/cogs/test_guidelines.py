"""Slash commands for admins, moderators and members, through the real bot and SimCord.

Each test plays what a person does in the Discord client and checks what they would see,
and what the database then holds.
"""

from __future__ import annotations

from typing import Any

import discord
import pytest
import simcord
from discord import app_commands

from discordbot import PromptWardenBot
from promptwarden.screening.decision import Severity, Verdict

NUDE = "a nude woman on a beach --ar 2:3"
GORE = "a gruesome battlefield painting"


class Server:
    def __init__(self, env: simcord.Env, name: str = "Prompt Art") -> None:
        self.env = env
        bot = env.bot
        assert isinstance(bot, PromptWardenBot)
        self.bot = bot
        self.guild = env.create_guild(name)
        self.channel = self.guild.create_text_channel("imagine")
        self.modlog = self.guild.create_text_channel("mod-log")
        admins = self.guild.create_role(
            "Admins", permissions=discord.Permissions(manage_guild=True, manage_messages=True)
        )
        mods = self.guild.create_role(
            "Mods", permissions=discord.Permissions(manage_messages=True, moderate_members=True)
        )
        self.admin = self.guild.add_member(env.create_user(f"ada-{name}"), roles=[admins])
        self.moderator = self.guild.add_member(env.create_user(f"mo-{name}"), roles=[mods])
        self.member = self.guild.add_member(env.create_user(f"bob-{name}"))

    @property
    def storage(self) -> Any:
        return self.bot.storage

    async def watch(self) -> None:
        await self.storage.add_watched_channel(self.guild.id, self.channel.id)
        await self.storage.set_modlog_channel(self.guild.id, self.modlog.id)
        # These tests count enforcement DMs; private-mode reminders are tested in test_privacy.
        await self.storage.set_privacy_config(self.guild.id, {"reminders_enabled": False})
        self.bot.dispatch("promptwarden_settings_changed", self.guild.id)
        await self.env.settle()

    async def incident(self, n: int, *, verdict: Verdict = Verdict.WARN, **extra: Any) -> int:
        fields: dict[str, Any] = {
            "guild_id": self.guild.id,
            "channel_id": self.channel.id,
            "message_id": 10_000 + n,
            "user_id": self.member.id,
            "prompt_excerpt": f"prompt number {n} gruesome",
            "categories": ["violence"],
            "severity": Severity.MEDIUM,
            "verdict": verdict,
            "matches": [
                {
                    "category": "violence",
                    "term": "gruesome",
                    "start": 16,
                    "end": 24,
                    "text": "gruesome",
                    "source": "rule:violence",
                    "severity": "medium",
                }
            ],
            "action": verdict.value,
            "created_at": self.env.now(),
        }
        fields.update(extra)
        incident_id, _ = await self.storage.record_incident(**fields)
        return int(incident_id)

    async def slash(self, who: simcord.MemberActor, name: str, **options: Any) -> Any:
        return await who.slash(self.channel, name, **options)


def text(result: Any) -> str:
    assert result.response is not None
    return str(result.response.content)


# ---------------------------------------------------------------- permissions


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


async def test_members_read_the_guidelines_privately(simcord_env: simcord.Env) -> None:
    s = Server(simcord_env)
    await s.storage.set_screening_rules(s.guild.id, {"actions": {"profanity": "off"}})

    result = await s.slash(s.member, "guidelines")

    assert result.ephemeral
    body = text(result)
    assert "Community guidelines of Prompt Art" in body
    assert "No adult content or nudity" in body and "No gore" in body
    assert "profanity" not in body.lower()  # switched off in this server
    assert "personal information" in body


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


# ---------------------------------------------------------------- /guideline-rules


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"term": "x" * 61}, "61 characters (at most 60)"),
        ({"term": "ca*t"}, "'*' is a wildcard only at the start or end"),
        ({"term": "(cat|dog)+"}, "not regular expressions"),
        ({"term": "wombat", "category": "weapons"}, "unknown category 'weapons'"),
        ({"term": "wombat", "severity": "extreme"}, "unknown severity 'extreme'"),
    ],
)
async def test_add_term_refuses_bad_input_and_changes_nothing(
    simcord_env: simcord.Env, options: dict[str, Any], message: str
) -> None:
    s = Server(simcord_env)
    result = await s.slash(s.admin, "guideline-rules add-term", **options)
    assert result.ephemeral
    assert message in text(result) and "Nothing was changed" in text(result)
    assert await s.storage.get_screening_rules(s.guild.id) is None


async def test_at_most_1000_custom_terms(simcord_env: simcord.Env) -> None:
    s = Server(simcord_env)
    terms = [{"term": f"word{n}"} for n in range(1000)]
    await s.storage.set_screening_rules(s.guild.id, {"custom_terms": terms})
    result = await s.slash(s.admin, "guideline-rules add-term", term="one more")
    assert "already has 1000 custom terms (at most 1000)" in text(result)
    saved = await s.storage.get_screening_rules(s.guild.id)
    assert len(saved["custom_terms"]) == 1000


async def test_a_new_term_applies_to_the_next_prompt(simcord_env: simcord.Env) -> None:
    s = Server(simcord_env)
    await s.watch()
    prompt = "a wombat wearing a crown"
    await s.member.send(s.channel, prompt)  # allowed before the rule
    tested = text(await s.slash(s.admin, "guideline-rules test", prompt=prompt))
    assert "Verdict: allow" in tested and "No matches" in tested

    added = await s.slash(
        s.admin, "guideline-rules add-term", term="wombat*", category="custom", severity="high"
    )
    assert "Added `wombat*` (custom, high)" in text(added)
    tested = text(await s.slash(s.admin, "guideline-rules test", prompt=prompt))
    assert "Verdict: block" in tested
    assert "- `wombat` → custom (high, custom)" in tested

    await s.member.send(s.channel, prompt + " again")
    assert [m.content for m in s.channel.history()] == [prompt]
    [incident] = await s.storage.find_incidents(s.guild.id)
    assert incident.categories == ("custom",)

    shown = text(await s.slash(s.admin, "guideline-rules show"))
    assert "Custom terms (1): `wombat*` (custom, high)" in shown
    assert "Removed `wombat*`" in text(
        await s.slash(s.admin, "guideline-rules remove-term", term="wombat*")
    )
    missing = await s.slash(s.admin, "guideline-rules remove-term", term="wombat*")
    assert "is not a custom or allowed term here" in text(missing)


async def test_set_action_and_allow(simcord_env: simcord.Env) -> None:
    s = Server(simcord_env)
    bad = await s.slash(s.admin, "guideline-rules set-action", category="violence", action="ban")
    assert "unknown action 'ban'" in text(bad)
    bad = await s.slash(s.admin, "guideline-rules set-action", category="gore", action="warn")
    assert "unknown category 'gore'" in text(bad)

    ok = await s.slash(s.admin, "guideline-rules set-action", category="violence", action="review")
    assert "**violence** now → **review**" in text(ok)
    assert "Verdict: review" in text(await s.slash(s.admin, "guideline-rules test", prompt=GORE))

    assert "Allowed `gruesome`" in text(
        await s.slash(s.admin, "guideline-rules allow", term="gruesome")
    )
    assert "Verdict: allow" in text(await s.slash(s.admin, "guideline-rules test", prompt=GORE))
    shown = text(await s.slash(s.admin, "guideline-rules show"))
    assert "Actions: violence: review" in shown and "Allowed terms (1): `gruesome`" in shown


async def test_rule_test_never_shows_personal_information(simcord_env: simcord.Env) -> None:
    s = Server(simcord_env)
    tested = text(
        await s.slash(s.admin, "guideline-rules test", prompt="mail me at bob@example.com")
    )
    assert "Verdict: remind" in tested and "[email]" in tested
    assert "bob@example.com" not in tested


async def test_category_and_action_options_suggest_valid_values(simcord_env: simcord.Env) -> None:
    s = Server(simcord_env)
    offered = await s.admin.autocomplete(s.channel, "guideline-rules set-action", "category", "vio")
    assert [c["value"] for c in offered] == ["violence"]
    offered = await s.admin.autocomplete(
        s.channel, "guideline-rules set-action", "action", "re", category="violence"
    )
    assert [c["value"] for c in offered] == ["review", "remind"]
