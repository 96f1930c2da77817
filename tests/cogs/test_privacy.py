"""Privacy features through the real discord.py bot against SimCord's simulated Discord:
private-mode reminders, personal-information warnings, the DM budget, appeals, data
export and erasure, retention, the admin commands, and what is never stored."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import discord
import pytest
import simcord
from discord import app_commands

from discordbot import PromptWardenBot
from promptwarden.storage import ERASED_TEXT
from tests.helpers import (
    CAT,
    DAY,
    DOG,
    GORE,
    appeal,
    button_ids,
    close_dms,
    field,
    old_incident,
    warned,
)
from tests.helpers import privacy_world as world

# ---------------------------------------------------------------- private-mode reminders


async def test_first_prompt_gets_a_reminder_then_none_until_the_interval_passes(
    simcord_env: simcord.Env,
) -> None:
    w = await world(simcord_env)
    await w.member.send(w.channel, CAT)

    [reminder] = w.reminders()
    assert "visible to everyone" in reminder.content and "public gallery" in reminder.content
    assert "stealth" in reminder.content and "direct message" in reminder.content
    assert "Server guidelines:" in reminder.content
    assert "/privacy reminders off" in reminder.content

    await w.member.send(w.channel, DOG)
    await simcord_env.advance_time(29 * DAY)
    await w.member.send(w.channel, "a fox in the snow")
    assert len(w.reminders()) == 1

    await simcord_env.advance_time(1 * DAY)
    await w.member.send(w.channel, "an owl at night")
    assert len(w.reminders()) == 2
    assert w.reminders(w.moderator) == []  # only who posted


async def test_opting_out_stops_reminders_and_opting_in_restores_them(
    simcord_env: simcord.Env,
) -> None:
    w = await world(simcord_env)
    result = await w.member.slash(w.channel, "privacy reminders", setting="off")
    assert result.ephemeral and "**off**" in result.response.content

    await w.member.send(w.channel, CAT)
    assert w.dms() == []

    result = await w.member.slash(w.channel, "privacy reminders", setting="on")
    assert "**on**" in result.response.content
    await w.member.send(w.channel, DOG)
    assert len(w.reminders()) == 1


async def test_no_reminder_in_a_channel_the_public_cannot_see(simcord_env: simcord.Env) -> None:
    w = await world(simcord_env)
    private = w.guild.create_text_channel(
        "vip-imagine",
        overwrites={
            w.guild.default_role: discord.PermissionOverwrite(view_channel=False),
            w.member: discord.PermissionOverwrite(view_channel=True, send_messages=True),
        },
    )
    await w.bot.storage.add_watched_channel(w.guild.id, private.id)
    await w.settings_changed()

    await w.member.send(private, CAT)
    assert w.dms() == []
    await w.member.send(w.channel, DOG)
    assert len(w.reminders()) == 1


async def test_a_generator_job_reminds_its_requester(simcord_env: simcord.Env) -> None:
    w = await world(simcord_env)
    generator = w.guild.add_member(simcord_env.create_user("Midjourney Bot", bot=True))
    await w.bot.storage.add_generator_bot(w.guild.id, generator.id)
    await w.settings_changed()
    prompt = f"**{CAT}** - <@{w.member.id}>"
    waiting = await generator.send(w.channel, f"{prompt} (Waiting to start)")
    await generator.edit(waiting, f"{prompt} (50%) (relaxed)")
    await generator.send(w.channel, f"{prompt} (relaxed)")

    assert len(w.reminders()) == 1


# ---------------------------------------------------------------- personal information


async def test_personal_information_warning_names_the_kind_never_the_value(
    simcord_env: simcord.Env,
) -> None:
    w = await world(simcord_env)
    await w.admin.slash(w.channel, "reminders off")
    await w.admin.slash(
        w.channel, "reminders text", text="Keep it private.", link="https://example.org/rules"
    )
    await w.member.send(w.channel, "portrait of me, email me at bob@example.com")
    await w.member.send(w.channel, "cake with bob.smith@example.org written on it")
    await w.member.send(w.channel, "call 555-123-4567 for commissions")

    first, second = w.dms()
    assert "personal information (email)" in first.content
    assert "bob@example.com" not in first.content
    assert "<https://example.org/rules>" in first.content
    assert "(phone)" in second.content and "555-123-4567" not in second.content
    # The second email within the interval is not warned about again: it is recorded.
    _, again, _ = await w.incidents()
    assert again.prompt_excerpt == "cake with [email] written on it"
    outcome, detail = (await w.outcomes(again))["dm_privacy"]
    assert outcome == "skipped" and "within the last 30 days" in detail


# ---------------------------------------------------------------- DM budget


async def test_the_dm_budget_caps_a_burst_and_sends_the_rest_later(
    simcord_env: simcord.Env,
) -> None:
    """Warnings over the budget wait, recorded as retryable, and reach every member once
    the budget allows: a burst never silences a warning."""
    w = await world(simcord_env)
    await w.admin.slash(w.channel, "reminders off")
    result = await w.admin.slash(w.channel, "reminders dm-limit", per_minute=2)
    assert "at most 2 DMs a minute" in result.response.content
    people = [w.guild.add_member(simcord_env.create_user(f"user{n}")) for n in range(5)]
    for n, person in enumerate(people):
        await person.send(w.channel, f"{GORE} number {n}")

    warned = [p for p in people if p.user.dm_channel.history()]
    assert len(warned) == 2
    incidents = await w.incidents()
    assert len(incidents) == 5  # every incident is recorded all the same
    held = [(await w.outcomes(i))["dm_warning"] for i in incidents[2:]]
    assert all(o == "rate_limited" and "queued" in d for o, d in held)
    assert ["channel_notice" in await w.outcomes(i) for i in incidents] == [False] * 5
    assert len(w.modlog_entries()) == 5  # the mod-log is not a DM: nothing held back

    spent = await people[0].slash(w.channel, "privacy export")
    assert spent.ephemeral and "try again in a minute" in spent.response.content

    await simcord_env.advance_time(150)  # two more minutes of budget: 2 + 2 DMs
    assert all(len(p.user.dm_channel.history()) == 1 for p in people)
    for person in people:
        [warning] = person.user.dm_channel.history()
        assert warning.embeds and warning.components  # the Appeal button, as always
    assert [(await w.outcomes(i))["dm_warning"][0] for i in incidents] == ["done"] * 5

    await people[4].send(w.channel, f"{GORE} once more")
    assert len(people[4].user.dm_channel.history()) == 2


# ---------------------------------------------------------------- appeals


async def test_an_accepted_appeal_removes_the_strike_and_dismisses_the_incident(
    simcord_env: simcord.Env,
) -> None:
    w = await world(simcord_env)
    incident, dm = await warned(w)
    assert button_ids(dm) == [f"pw:appeal:open:{w.guild.id}:{incident.id}"]
    shown = await w.member.user.click(dm, label="Appeal")
    assert shown.modal is not None and shown.modal["title"] == f"Appeal incident #{incident.id}"

    sent = await w.member.user.submit_modal(shown, {"reason": "It is a museum painting."})

    assert "sent to the moderators of Prompt Art" in sent.response.content
    entry = w.modlog_entries()[-1]
    embed = entry.embeds[0]
    assert f"incident #{incident.id}" in (embed.title or "")
    assert embed.description == "It is a museum painting."
    assert f"<@{w.member.id}>" in field(embed, "Member")
    [stored_appeal] = await w.bot.storage.list_appeals(w.guild.id, incident.id)
    assert button_ids(entry) == [
        f"pw:appeal:accept:{stored_appeal.id}",
        f"pw:appeal:reject:{stored_appeal.id}",
    ]
    window = timedelta(days=30)
    assert (
        await w.bot.storage.active_points(w.guild.id, w.member.id, window=window, now=w.env.now())
        == 1
    )

    await w.moderator.click(entry, label="Accept")

    stored = await w.bot.storage.get_incident(w.guild.id, incident.id)
    assert stored is not None and stored.status == "dismissed"
    assert (
        await w.bot.storage.active_points(w.guild.id, w.member.id, window=window, now=w.env.now())
        == 0
    )
    decided = w.modlog_entries()[-1]
    decision = field(decided.embeds[0], "Decision")
    assert f"Accepted by <@{w.moderator.id}>" in decision and "strike removed" in decision
    assert "member told by DM" in decision
    assert decided.components == []  # decided once: the buttons are gone
    answer = w.dms()[-1]
    assert "was accepted" in answer.content and "strike removed" in answer.content
    [stored_appeal] = await w.bot.storage.list_appeals(w.guild.id, incident.id)
    assert (stored_appeal.status, stored_appeal.moderator_id) == ("accepted", w.moderator.id)

    again = await w.member.user.click(dm, label="Appeal")
    assert again.modal is None and "already accepted" in again.response.content


async def test_a_rejected_appeal_after_a_restart_and_one_open_appeal_at_a_time(
    simcord_env: simcord.Env, make_bot: Callable[..., PromptWardenBot]
) -> None:
    w = await world(simcord_env)
    incident, dm = await warned(w)
    first_form = await w.member.user.click(dm, label="Appeal")
    await appeal(w, dm, incident, "Battle paintings are art.")
    second = await w.member.user.click(dm, label="Appeal")
    assert second.modal is None and "already appealed" in second.response.content
    # A form opened before the first appeal was sent is refused too.
    late = await w.member.user.submit_modal(first_form, {"reason": "Once more."})
    assert "already appealed" in late.response.content
    assert len(await w.bot.storage.list_appeals(w.guild.id, incident.id)) == 1
    assert len([e for e in w.modlog_entries() if "Appeal" in (e.embeds[0].title or "")]) == 1

    await simcord_env.restart_bot(make_bot())
    bot = simcord_env.bot
    assert isinstance(bot, PromptWardenBot)
    entry = w.modlog_entries()[-1]
    denied = await w.member.click(entry, label="Reject")
    assert denied.ephemeral and "Manage Messages" in denied.response.content
    await w.moderator.click(entry, label="Reject")

    stored = await bot.storage.get_incident(w.guild.id, incident.id)
    assert stored is not None and stored.status == "upheld"
    window = timedelta(days=30)
    assert (
        await bot.storage.active_points(w.guild.id, w.member.id, window=window, now=w.env.now())
        == 1
    )
    assert "was rejected" in w.dms()[-1].content
    assert "Rejected by" in field(w.modlog_entries()[-1].embeds[0], "Decision")


async def test_the_appeal_button_works_after_a_restart(
    simcord_env: simcord.Env, make_bot: Callable[..., PromptWardenBot]
) -> None:
    w = await world(simcord_env)
    incident, dm = await warned(w)
    await simcord_env.restart_bot(make_bot())
    bot = simcord_env.bot
    assert isinstance(bot, PromptWardenBot)
    w.bot = bot

    sent = await appeal(w, dm, incident, "After the restart.")

    assert "sent to the moderators" in sent.response.content
    [stored] = await bot.storage.list_appeals(w.guild.id, incident.id)
    assert stored.reason == "After the restart."


async def test_an_appeal_without_a_mod_log_is_recorded_and_the_member_told(
    simcord_env: simcord.Env,
) -> None:
    w = await world(simcord_env)
    incident, dm = await warned(w)
    await w.bot.storage.set_modlog_channel(w.guild.id, None)

    sent = await appeal(w, dm, incident, "Please look again.")

    assert "is recorded, but I could not show it" in sent.response.content
    [stored] = await w.bot.storage.list_appeals(w.guild.id, incident.id)
    assert stored.status == "open" and stored.reason == "Please look again."
    assert (await w.outcomes(incident))["appeal_modlog"][0] == "skipped"


# ---------------------------------------------------------------- export and erasure


async def test_export_sends_everything_about_the_person_and_nothing_else(
    simcord_env: simcord.Env,
) -> None:
    w = await world(simcord_env)
    other = await world(simcord_env, "Other Server")
    other_member = other.guild.add_member(w.member.user)
    await w.member.slash(w.channel, "privacy reminders", setting="off")
    await w.member.send(w.channel, GORE)
    await other_member.send(other.channel, "a naked man")
    await w.moderator.send(w.channel, "a gruesome scene")  # exempt: not an incident
    someone = w.guild.add_member(simcord_env.create_user("eve"))
    await someone.send(w.channel, "a gory zombie portrait")
    [mine] = [i for i in await w.incidents() if i.user_id == w.member.id]
    await appeal(w, w.dms()[0], mine, "Art history.")

    result = await w.member.slash(w.channel, "privacy export")

    assert result.ephemeral and "I sent you a DM" in result.response.content
    dm = w.dms()[-1]
    [attachment] = dm.attachments
    assert attachment.filename == f"promptwarden-data-{w.member.id}.json"
    blob = simcord_env.backend.cdn.get(attachment.url)
    assert blob is not None
    data = json.loads(blob)
    assert data["user_id"] == str(w.member.id)
    assert data["preferences"]["reminders_enabled"] is False
    assert {(i["guild_id"], i["verdict"]) for i in data["incidents"]} == {
        (str(w.guild.id), "warn"),
        (str(other.guild.id), "block"),
    }
    assert [s["points"] for s in data["strikes"]] == [1, 2]
    assert [a["reason"] for a in data["appeals"]] == ["Art history."]
    warn = next(i for i in data["incidents"] if i["verdict"] == "warn")
    assert warn["prompt_excerpt"] == GORE
    assert {"action": "dm_warning", "outcome": "done"} in [
        {k: a[k] for k in ("action", "outcome")} for a in warn["actions"]
    ]
    assert "zombie" not in blob.decode() and str(someone.id) not in blob.decode()


async def test_export_with_closed_dms_says_so(simcord_env: simcord.Env) -> None:
    w = await world(simcord_env)
    close_dms(simcord_env, w.member)
    result = await w.member.slash(w.channel, "privacy export")
    assert result.ephemeral and "direct messages are closed" in result.response.content


async def test_delete_after_confirmation_redacts_prompts_and_keeps_actions(
    simcord_env: simcord.Env,
) -> None:
    w = await world(simcord_env)
    await w.member.send(w.channel, GORE)
    await w.member.slash(w.channel, "privacy reminders", setting="off")
    [incident] = await w.incidents()

    asked = await w.member.slash(w.channel, "privacy delete")
    assert asked.ephemeral and "Continue?" in asked.response.content
    stored = await w.bot.storage.get_incident(w.guild.id, incident.id)
    assert stored is not None and stored.prompt_excerpt == GORE  # nothing before confirming
    cancelled = await w.member.click(asked.response, label="Cancel")
    assert cancelled.response is not None
    assert "nothing deleted" in cancelled.response.content

    asked = await w.member.slash(w.channel, "privacy delete")
    done = await w.member.click(asked.response, label="Delete my data")

    assert "Done" in done.response.content and "1 incident(s)" in done.response.content
    stored = await w.bot.storage.get_incident(w.guild.id, incident.id)
    assert stored is not None and stored.prompt_excerpt == ERASED_TEXT
    assert stored.action == "warn" and stored.categories == ("violence",)
    assert (await w.outcomes(stored))["dm_warning"][0] == "done"
    assert await w.bot.storage.get_reminder_choices([w.member.id]) == {}
    # The mod-log entry is Discord's message, not the bot's store: moderators keep it.
    assert len(w.modlog_entries()) == 1


# ---------------------------------------------------------------- retention


async def test_the_daily_job_deletes_only_incidents_older_than_the_retention(
    simcord_env: simcord.Env,
) -> None:
    w = await world(simcord_env)
    old = await old_incident(w, days_ago=181, message_id=1)
    recent = await old_incident(w, days_ago=10, message_id=2)
    await simcord_env.advance_time(DAY)
    assert [i.id for i in await w.incidents()] == [recent]

    result = await w.admin.slash(w.channel, "retention", days=7)
    assert "kept for 7 days" in result.response.content
    await simcord_env.advance_time(DAY)
    assert await w.incidents() == []
    assert old != recent


# ---------------------------------------------------------------- admin commands


async def test_admins_set_the_reminder_text_and_link(simcord_env: simcord.Env) -> None:
    w = await world(simcord_env)
    result = await w.admin.slash(
        w.channel,
        "reminders text",
        text="Everything here is public. Use /stealth.",
        link="https://example.org/guidelines",
    )
    assert result.ephemeral and "Saved" in result.response.content
    assert "Everything here is public" in result.response.content

    await w.member.send(w.channel, CAT)
    [reminder] = w.reminders()
    assert "Everything here is public. Use /stealth." in reminder.content
    assert "Server guidelines: <https://example.org/guidelines>" in reminder.content

    bad = await w.admin.slash(w.channel, "reminders text", text="x", link="javascript:alert(1)")
    assert "Not saved" in bad.response.content and "https://" in bad.response.content


async def test_admins_turn_reminders_off_and_change_the_interval(
    simcord_env: simcord.Env,
) -> None:
    w = await world(simcord_env)
    result = await w.admin.slash(w.channel, "reminders off")
    assert result.ephemeral and "off in this server" in result.response.content
    await w.member.send(w.channel, CAT)
    assert w.dms() == []

    await w.admin.slash(w.channel, "reminders on")
    result = await w.admin.slash(w.channel, "reminders interval", days=7)
    assert "every 7 days" in result.response.content
    shown = await w.admin.slash(w.channel, "reminders show")
    assert "**on**" in shown.response.content and "every 7 days" in shown.response.content
    assert "Incidents kept: 180 days" in shown.response.content
    await w.member.send(w.channel, DOG)
    await simcord_env.advance_time(7 * DAY)
    await w.member.send(w.channel, "a fox in the snow")
    assert len(w.reminders()) == 2


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("reminders off", {}),
        ("reminders show", {}),
        ("reminders text", {"text": "hi"}),
        ("reminders dm-limit", {"per_minute": 60}),
        ("retention", {"days": 1}),
    ],
)
async def test_admin_commands_are_hidden_from_members_and_refused_at_run_time(
    simcord_env: simcord.Env, command: str, options: dict[str, Any]
) -> None:
    w = await world(simcord_env)
    root = command.split()[0]
    assert root not in w.member.available_commands(w.channel)
    with pytest.raises(simcord.SetupError, match="not visible"):
        await w.member.slash(w.channel, command, **options)

    # An admin may show a command to anyone (Integrations settings); the check still holds.
    [registered] = [c for c in await w.bot.tree.fetch_commands() if c.name == root]
    assert registered.default_member_permissions == discord.Permissions(manage_guild=True)
    w.guild.set_command_permissions(registered, {w.member: True})
    result = await w.member.slash(w.channel, command, **options)

    assert result.ephemeral
    assert result.response.content == "You need the Manage Server permission to use this."
    assert await w.bot.storage.get_privacy_config(w.guild.id) is None
    errors = simcord_env.errors
    assert len(errors) == 1 and isinstance(errors[0], app_commands.MissingPermissions)


# ---------------------------------------------------------------- hygiene


async def test_prompts_of_allowed_messages_are_never_stored(
    simcord_env: simcord.Env, bot_settings: Any
) -> None:
    w = await world(simcord_env)
    allowed = "a lighthouse in a violet storm, zzqqxx-marker"
    await w.member.send(w.channel, allowed)
    await w.member.send(w.channel, GORE)  # something is stored, just not that

    assert [i.prompt_excerpt for i in await w.incidents()] == [GORE]
    assert len(w.reminders()) == 1  # the reminder was sent: the prompt was seen
    path = bot_settings.database_path
    stored = b"".join(p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name))
    assert b"zzqqxx-marker" not in stored and GORE.encode() in stored
