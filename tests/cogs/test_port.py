"""What members and moderators see of the actions service's fixes, through the real bot
and SimCord: a dismissed false positive's reposts stay up, erasure reaches the mod-log
messages in Discord, and reminders never use up the DMs warnings need."""

from __future__ import annotations

import simcord

from promptwarden.storage import ERASED_TEXT
from tests.helpers import BOTH_BOT_BACKENDS, GORE, NUDE, appeal, button_ids, field, warned
from tests.helpers import privacy_world as world
from tests.helpers import world as screening_world

pytestmark = BOTH_BOT_BACKENDS


async def test_a_repost_of_a_dismissed_false_positive_stays_up(simcord_env: simcord.Env) -> None:
    w = await screening_world(simcord_env)
    await w.member.send(w.channel, NUDE)
    [incident] = await w.incidents()
    assert w.messages() == [] and len(w.dms()) == 1
    await w.moderator.click(w.modlog_entries()[-1], custom_id=f"pw:incident:dismiss:{incident.id}")

    await w.member.send(w.channel, NUDE)  # the same prompt the same day: the same job

    assert w.messages() == [NUDE]  # a false positive: the repost is not removed
    assert len(w.dms()) == 1  # and nobody is warned again
    assert await w.incidents() == [await w.bot.storage.get_incident(w.guild.id, incident.id)]
    assert await w.points() == 0


async def test_erasure_edits_the_mod_log_and_appeal_messages_in_discord(
    simcord_env: simcord.Env,
) -> None:
    w = await world(simcord_env)
    incident, dm = await warned(w)
    await appeal(w, dm, incident, "It is my own painting of my uncle Bob's farm.")
    entry, appeal_entry = w.modlog_entries()
    assert "battlefield painting" in (entry.embeds[0].description or "")
    assert "uncle Bob" in (appeal_entry.embeds[0].description or "")

    asked = await w.member.slash(w.channel, "privacy delete")
    done = await w.member.click(asked.response, label="Delete my data")

    assert "moderators' log messages" in done.response.content
    entry, appeal_entry = w.modlog_entries()  # the same two messages, edited
    shown = [entry.embeds[0], appeal_entry.embeds[0]]
    for embed in shown:
        assert embed.description == ERASED_TEXT
        text = " ".join([embed.title or "", *(str(f.value) for f in embed.fields)])
        assert "battlefield" not in text and "uncle Bob" not in text
    assert field(entry.embeds[0], "Matched words") == ERASED_TEXT
    assert field(appeal_entry.embeds[0], "Prompt") == ERASED_TEXT
    # What moderators decide with stays: who, which incident, the buttons.
    assert f"<@{w.member.id}>" in field(entry.embeds[0], "Member")
    assert f"pw:incident:dismiss:{incident.id}" in button_ids(entry)
    assert button_ids(appeal_entry)[0].startswith("pw:appeal:accept:")


async def test_a_flood_of_reminders_and_exports_never_stops_a_warning(
    simcord_env: simcord.Env,
) -> None:
    w = await world(simcord_env)
    await w.admin.slash(w.channel, "reminders dm-limit", per_minute=4)
    crowd = [w.guild.add_member(simcord_env.create_user(f"newcomer{n}")) for n in range(6)]
    for person in crowd:  # every first prompt earns a private-mode reminder
        await person.send(w.channel, "a cat in a hat")
    for person in crowd:
        await person.slash(w.channel, "privacy export")
    reminded = [p for p in crowd if p.user.dm_channel.history()]
    assert 0 < len(reminded) < len(crowd)  # the reminders' share is spent

    await w.member.send(w.channel, GORE)

    warnings = [m for m in w.dms() if m.embeds]
    assert len(warnings) == 1 and "goes against the guidelines" in (
        warnings[0].embeds[0].title or ""
    )
    [incident] = await w.incidents()
    assert (await w.outcomes(incident))["dm_warning"][0] == "done"


async def test_prompts_read_settings_once_and_a_change_applies_at_once(
    simcord_env: simcord.Env,
) -> None:
    """Every setting (privacy included) comes from one cached state: a burst of prompts
    reads the database once, and a command's change is seen by the very next prompt."""
    w = await screening_world(simcord_env)
    await w.member.send(w.channel, "a cat in a hat")
    loads = w.bot.guild_states.loads
    for n in range(5):
        await w.member.send(w.channel, f"a cat in a hat number {n}")
    assert w.bot.guild_states.loads == loads  # privacy and enforcement included

    other = w.guild.create_text_channel("imagine-2")
    await w.bot.storage.add_watched_channel(w.guild.id, other.id)  # no event dispatched
    await w.member.send(other, NUDE)

    assert w.messages(other) == []  # watched at once: removed
    assert w.bot.guild_states.loads == loads + 1
