"""The watcher through the real discord.py bot against SimCord's simulated Discord.

Every test plays what members, the generator bot and moderators do, and checks what they
would see (messages gone or kept, DMs, notices, mod-log entries, timeouts) and what the
incident log holds.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import discord
import simcord

from cogs._facts import message_facts
from discordbot import PromptWardenBot
from promptwarden.enforcement import MessageFacts
from promptwarden.screening.decision import Severity, Verdict
from tests.helpers import (
    BOTH_BOT_BACKENDS,
    CAT,
    GORE,
    NUDE,
    close_dms,
    field,
    screening,
    world,
)

# Each test runs once on SQLite and once on PostgreSQL, but the burst: it measures the
# queue, not storage, and SimCord's settling scans every pending timer per task, which
# makes hundreds of real database round trips crawl.


# ---------------------------------------------------------------- verdicts


@BOTH_BOT_BACKENDS
async def test_a_violating_prompt_is_deleted_then_the_member_warned(
    simcord_env: simcord.Env,
) -> None:
    w = await world(simcord_env)
    await w.member.send(w.channel, NUDE)

    assert NUDE not in w.messages()
    [dm] = w.dms()
    embed = dm.embeds[0]
    assert "removed" in (embed.title or "")
    assert "adult content or nudity" in field(embed, "Guideline")
    assert "`nude`" in field(embed, "Matched words")
    assert "nude woman on a beach" in field(embed, "Your prompt")
    assert "2 active strike point(s)" in field(embed, "Strikes")

    [incident] = await w.incidents()
    assert (incident.user_id, incident.message_id) == (w.member.id, incident.message_id)
    assert incident.verdict.value == "block" and incident.categories == ("sexual",)
    assert await w.outcomes(incident) == {
        "delete": "done",
        "strike": "done",
        "dm_slot": "done",  # the warning's DM-budget slot, noted with the incident
        "dm_warning": "done",
        "modlog": "done",
    }
    [entry] = w.modlog_entries()
    log_embed = entry.embeds[0]
    assert "Prompt blocked" in (log_embed.title or "")
    assert "a **nude** woman on a beach" in (log_embed.description or "")
    assert f"<@{w.member.id}>" in field(log_embed, "Member")
    assert f"<#{w.channel.id}>" in field(log_embed, "Channel")
    assert field(log_embed, "Categories") == "sexual"
    assert field(log_embed, "Severity") == "high"
    assert field(log_embed, "Fired") == "rule:sexual"
    assert field(log_embed, "Strikes") == "2 active point(s)"
    assert [c.custom_id for row in entry.components for c in row.children] == [  # type: ignore[union-attr]
        f"pw:incident:{action}:{incident.id}"
        for action in ("dismiss", "uphold", "timeout", "delete")
    ]
    # Delete first, then the DM.
    calls = [(r.method, r.path) for r in w.env.http_requests]
    delete = calls.index(("DELETE", f"/channels/{w.channel.id}/messages/{incident.message_id}"))
    dm_channel = w.member.user.dm_channel.id
    assert delete < calls.index(("POST", f"/channels/{dm_channel}/messages"))


@BOTH_BOT_BACKENDS
async def test_a_warn_level_prompt_is_dmed_but_kept(simcord_env: simcord.Env) -> None:
    w = await world(simcord_env)
    await w.member.send(w.channel, GORE)

    assert GORE in w.messages()
    [dm] = w.dms()
    assert "goes against the guidelines" in (dm.embeds[0].title or "")
    assert "No gore" in field(dm.embeds[0], "Guideline")
    assert "`gruesome`" in field(dm.embeds[0], "Matched words")
    [incident] = await w.incidents()
    assert incident.verdict.value == "warn"
    assert "delete" not in await w.outcomes(incident)


@BOTH_BOT_BACKENDS
async def test_an_allowed_prompt_leaves_no_trace(simcord_env: simcord.Env) -> None:
    w = await world(simcord_env)
    await w.member.send(w.channel, CAT)

    assert CAT in w.messages()
    assert w.dms() == []
    assert await w.incidents() == []
    assert w.modlog_entries() == []


@BOTH_BOT_BACKENDS
async def test_review_goes_to_moderators_only_with_the_words_that_weighed(
    simcord_env: simcord.Env,
) -> None:
    """`review` is the learned tier's verdict; a guild can map a category to it too."""
    w = await world(simcord_env)
    await w.bot.storage.set_screening_rules(w.guild.id, {"actions": {"violence": "review"}})
    screening(w.bot).states.invalidate(w.guild.id)

    await w.member.send(w.channel, GORE)

    assert GORE in w.messages() and w.dms() == []
    [incident] = await w.incidents()
    assert incident.verdict.value == "review" and incident.status == "open"
    [entry] = w.modlog_entries()
    embed = entry.embeds[0]
    assert "Needs review" in (embed.title or "")
    assert "**gruesome**" in (embed.description or "")
    assert "`gruesome`" in field(embed, "Matched words")
    assert (
        await w.bot.storage.active_points(w.guild.id, w.member.id, window=timedelta(days=30)) == 0
    )


@BOTH_BOT_BACKENDS
async def test_personal_information_gets_a_private_reminder_and_is_not_stored(
    simcord_env: simcord.Env,
) -> None:
    w = await world(simcord_env)
    content = "portrait of me, email me at bob@example.com"
    await w.member.send(w.channel, content)

    assert content in w.messages()  # deleting is off by default
    [dm] = w.dms()
    assert "personal information (email)" in dm.content
    assert "bob@example.com" not in dm.content
    [incident] = await w.incidents()
    assert incident.prompt_excerpt == "portrait of me, email me at [email]"
    assert "bob@example.com" not in str(incident.matches)


@BOTH_BOT_BACKENDS
async def test_moderators_and_unwatched_channels_are_left_alone(simcord_env: simcord.Env) -> None:
    w = await world(simcord_env)
    elsewhere = w.guild.create_text_channel("general")
    await w.moderator.send(w.channel, NUDE)
    await w.member.send(elsewhere, NUDE)

    assert NUDE in w.messages() and NUDE in w.messages(elsewhere)
    assert await w.incidents() == []


@BOTH_BOT_BACKENDS
async def test_a_watched_category_covers_its_channels(simcord_env: simcord.Env) -> None:
    w = await world(simcord_env)
    category = w.guild.create_category("Generation")
    inside = w.guild.create_text_channel("gen-2", category=category)
    await w.bot.storage.add_watched_channel(w.guild.id, category.id, "category")
    screening(w.bot).states.invalidate(w.guild.id)

    await w.member.send(inside, NUDE)

    assert NUDE not in w.messages(inside)
    assert len(await w.incidents()) == 1


# ---------------------------------------------------------------- generator bots


@BOTH_BOT_BACKENDS
async def test_a_generator_job_blames_its_requester_and_counts_once(
    simcord_env: simcord.Env,
) -> None:
    w = await world(simcord_env)
    prompt = f"**{GORE} --ar 16:9** - <@{w.member.id}>"
    waiting = await w.job(f"{prompt} (Waiting to start)")
    await w.generator.edit(waiting, f"{prompt} (31%) (relaxed)")
    await w.generator.edit(waiting, f"{prompt} (62%) (relaxed)")
    await w.generator.send(w.channel, f"{prompt} (relaxed)")

    [incident] = await w.incidents()
    assert incident.user_id == w.member.id and incident.message_id == waiting.id
    assert len(w.dms()) == 1  # the requester, once
    assert w.dms(w.moderator) == []
    assert len(w.modlog_entries()) == 1
    assert await w.points() == 1


@BOTH_BOT_BACKENDS
async def test_a_blocked_job_loses_its_result_image_too(simcord_env: simcord.Env) -> None:
    w = await world(simcord_env)
    prompt = f"**{NUDE}** - <@{w.member.id}>"
    await w.job(f"{prompt} (Waiting to start)")
    await w.generator.send(w.channel, f"{prompt} (fast)")
    # The same prompt re-rolled in another watched channel the same day: removed, not
    # counted again.
    again = w.guild.create_text_channel("imagine-2")
    await w.bot.storage.add_watched_channel(w.guild.id, again.id)
    screening(w.bot).states.invalidate(w.guild.id)
    await w.generator.send(again, f"{prompt} (fast)")

    assert w.messages() == [] and w.messages(again) == []
    [incident] = await w.incidents()
    assert len(w.dms()) == 1
    records = await w.bot.storage.list_action_outcomes(w.guild.id, incident.id)
    deletes = [r for r in records if r.action == "delete"]
    assert [r.outcome for r in deletes] == ["done", "done", "done"]


@BOTH_BOT_BACKENDS
async def test_other_bots_and_webhooks_are_ignored(simcord_env: simcord.Env) -> None:
    w = await world(simcord_env)
    other = w.guild.add_member(w.env.create_user("Some Bot", bot=True))
    hook = w.guild.create_webhook(w.channel, "Feed")
    await other.send(w.channel, f"**{NUDE}** - <@{w.member.id}> (fast)")
    await hook.send(NUDE)

    assert await w.incidents() == []
    assert len(w.messages()) == 2


# ---------------------------------------------------------------- failures


@BOTH_BOT_BACKENDS
async def test_closed_dms_get_a_short_notice_in_the_channel(simcord_env: simcord.Env) -> None:
    w = await world(simcord_env)
    close_dms(w.env, w.member)
    await w.member.send(w.channel, GORE)

    notice = w.channel.history()[-1]
    assert w.bot.user is not None and notice.author.id == w.bot.user.id
    assert f"<@{w.member.id}>" in notice.content and "DMs are closed" in notice.content
    [incident] = await w.incidents()
    outcomes = await w.outcomes(incident)
    assert outcomes["dm_warning"] == "forbidden" and outcomes["channel_notice"] == "done"

    await w.env.advance_time(31)
    assert w.messages() == [GORE]  # the notice deleted itself


@BOTH_BOT_BACKENDS
async def test_a_message_already_gone_is_recorded_as_not_found(simcord_env: simcord.Env) -> None:
    w = await world(simcord_env)
    w.env.inject_error(
        "DELETE",
        f"/channels/{w.channel.id}/messages/*",
        status=404,
        code=10008,
        message="Unknown Message",
    )
    await w.member.send(w.channel, NUDE)

    [incident] = await w.incidents()
    outcomes = await w.outcomes(incident)
    assert outcomes["delete"] == "not_found"
    assert outcomes["dm_warning"] == "done" and len(w.dms()) == 1


@BOTH_BOT_BACKENDS
async def test_a_missing_permission_is_recorded_and_the_rest_still_happens(
    simcord_env: simcord.Env,
) -> None:
    w = await world(simcord_env)
    w.env.inject_error(
        "DELETE",
        f"/channels/{w.channel.id}/messages/*",
        status=403,
        code=50013,
        message="Missing Permissions",
    )
    await w.member.send(w.channel, NUDE)

    assert NUDE in w.messages()
    [incident] = await w.incidents()
    outcomes = await w.outcomes(incident)
    assert outcomes["delete"] == "forbidden"
    assert outcomes["dm_warning"] == "done" and outcomes["modlog"] == "done"


@BOTH_BOT_BACKENDS
async def test_the_incident_is_written_before_discord_is_called(simcord_env: simcord.Env) -> None:
    w = await world(simcord_env)
    w.env.inject_error("*", "*", status=500, times=None)
    await w.member.send(w.channel, NUDE)

    [incident] = await w.incidents()
    outcomes = await w.outcomes(incident)
    assert outcomes["delete"] == "failed"
    assert outcomes["dm_warning"] == "failed" and outcomes["modlog"] == "failed"
    assert outcomes["strike"] == "done"  # the database part still happened
    w.env.backend.faults.clear()


# ---------------------------------------------------------------- strikes


@BOTH_BOT_BACKENDS
async def test_strikes_add_up_to_a_timeout(simcord_env: simcord.Env) -> None:
    w = await world(simcord_env)
    await w.member.send(w.channel, NUDE)  # block: 2 points
    assert w.timed_out_until(w.member) is None
    await w.member.send(w.channel, GORE)  # warn: 1 point -> 3: one hour

    until = w.timed_out_until(w.member)
    assert until is not None
    assert discord.utils.parse_time(until) - w.env.now() == timedelta(hours=1)
    second = (await w.incidents())[-1]
    assert (await w.outcomes(second))["timeout"] == "done"
    assert "3 active strike point(s)" in field(w.dms()[-1].embeds[0], "Strikes")


# ---------------------------------------------------------------- mod-log buttons


@BOTH_BOT_BACKENDS
async def test_dismiss_removes_the_strike_and_shows_who_acted(simcord_env: simcord.Env) -> None:
    w = await world(simcord_env)
    await w.member.send(w.channel, GORE)
    [entry] = w.modlog_entries()
    [incident] = await w.incidents()
    assert await w.points() == 1

    result = await w.moderator.click(entry, custom_id=f"pw:incident:dismiss:{incident.id}")

    assert not result.ephemeral
    updated = w.modlog_entries()[0].embeds[0]
    assert f"Dismissed as a false positive by <@{w.moderator.id}>; strike removed" in field(
        updated, "Moderator actions"
    )
    assert updated.footer.text == "Status: dismissed"
    stored = await w.bot.storage.get_incident(w.guild.id, incident.id)
    assert stored is not None and stored.status == "dismissed"
    assert await w.points() == 0
    [press] = await w.bot.storage.list_modlog_presses(w.guild.id, incident.id)
    assert (press.moderator_id, press.action) == (w.moderator.id, "dismiss")


@BOTH_BOT_BACKENDS
async def test_time_out_and_delete_buttons(simcord_env: simcord.Env) -> None:
    w = await world(simcord_env)
    await w.member.send(w.channel, GORE)
    [entry] = w.modlog_entries()
    [incident] = await w.incidents()

    await w.moderator.click(entry, custom_id=f"pw:incident:timeout:{incident.id}")
    assert w.timed_out_until(w.member) is not None
    await w.moderator.click(entry, custom_id=f"pw:incident:delete:{incident.id}")
    assert GORE not in w.messages()

    actions = field(w.modlog_entries()[0].embeds[0], "Moderator actions")
    assert f"Time out 1 h by <@{w.moderator.id}>: done" in actions
    assert f"Delete message by <@{w.moderator.id}>: done" in actions
    outcomes = await w.outcomes(incident)
    assert outcomes["manual_timeout"] == "done" and outcomes["manual_delete"] == "done"


@BOTH_BOT_BACKENDS
async def test_buttons_still_work_after_a_restart(
    simcord_env: simcord.Env, make_bot: Callable[..., PromptWardenBot]
) -> None:
    w = await world(simcord_env)
    await w.member.send(w.channel, GORE)
    [incident] = await w.incidents()

    await simcord_env.restart_bot(make_bot())
    bot = simcord_env.bot
    assert isinstance(bot, PromptWardenBot)
    await w.moderator.click(w.modlog_entries()[0], custom_id=f"pw:incident:uphold:{incident.id}")

    stored = await bot.storage.get_incident(w.guild.id, incident.id)
    assert stored is not None and stored.status == "upheld"
    assert f"Upheld by <@{w.moderator.id}>" in field(
        w.modlog_entries()[0].embeds[0], "Moderator actions"
    )


@BOTH_BOT_BACKENDS
async def test_members_without_manage_messages_cannot_press(simcord_env: simcord.Env) -> None:
    w = await world(simcord_env)
    await w.member.send(w.channel, GORE)
    [incident] = await w.incidents()

    result = await w.member.click(
        w.modlog_entries()[0], custom_id=f"pw:incident:dismiss:{incident.id}"
    )

    assert result.ephemeral and result.response is not None
    assert "Manage Messages" in result.response.content
    stored = await w.bot.storage.get_incident(w.guild.id, incident.id)
    assert stored is not None and stored.status == "open"
    assert await w.bot.storage.list_modlog_presses(w.guild.id, incident.id) == []


# ---------------------------------------------------------------- catch-up


@BOTH_BOT_BACKENDS
async def test_prompts_posted_while_the_bot_was_away_are_screened_on_restart(
    simcord_env: simcord.Env, make_bot: Callable[..., PromptWardenBot]
) -> None:
    w = await world(simcord_env)
    await w.member.send(w.channel, GORE)  # handled live: must not be handled again
    # Posted while the bot is away: stored by Discord, never delivered over the gateway.
    backend = simcord_env.backend
    backend.create_message(w.channel.id, w.member.id, NUDE, broadcast=False)
    backend.create_message(w.channel.id, w.member.id, CAT, broadcast=False)

    await simcord_env.restart_bot(make_bot())

    assert w.messages() == [GORE, CAT]
    incidents = await w.incidents()
    assert [i.verdict.value for i in incidents] == ["warn", "block"]
    assert len(w.dms()) == 2  # one per incident, none repeated
    cursor = await simcord_env.bot.storage.get_catchup_cursor(w.guild.id, w.channel.id)  # type: ignore[attr-defined]
    assert cursor == w.channel.history()[-1].id

    await simcord_env.restart_bot(make_bot())  # nothing new: nothing happens
    assert len(await w.incidents()) == 2 and len(w.dms()) == 2


@BOTH_BOT_BACKENDS
async def test_threads_of_a_watched_channel_and_posts_of_a_watched_forum(
    simcord_env: simcord.Env,
) -> None:
    w = await world(simcord_env)
    forum = w.guild.create_forum_channel("showcase")
    await w.bot.storage.add_watched_channel(w.guild.id, forum.id)
    screening(w.bot).states.invalidate(w.guild.id)
    backend = simcord_env.backend
    backend.create_thread(w.channel.id, "variations", w.member.id)
    backend.create_thread(forum.id, "my best", w.member.id)
    await simcord_env.settle()
    [thread] = w.channel.threads
    [post] = forum.threads

    await w.member.send(thread, NUDE)
    await w.member.send(post, "a naked man")

    print(
        "DBG",
        [(m.channel, type(m.channel)) for m in post.history()],
        w.bot.get_channel(post.id),
        w.bot.get_guild(w.guild.id).threads,
    )
    assert w.messages(thread) == [] and w.messages(post) == []
    assert {i.channel_id for i in await w.incidents()} == {thread.id, post.id}


@BOTH_BOT_BACKENDS
async def test_moderators_can_be_screened_when_the_guild_says_so(
    simcord_env: simcord.Env,
) -> None:
    w = await world(simcord_env)
    await w.moderator.send(w.channel, NUDE)  # exempt under the settings read now
    await w.bot.storage.set_enforcement_config(w.guild.id, {"moderators_exempt": False})
    # What a settings command does after saving, so the change applies at once.
    w.bot.dispatch("promptwarden_settings_changed", w.guild.id)
    await simcord_env.settle()

    await w.moderator.send(w.channel, "a naked man")

    assert w.messages() == [NUDE]
    [incident] = await w.incidents()
    assert incident.user_id == w.moderator.id


@BOTH_BOT_BACKENDS
async def test_catch_up_stays_within_its_window(
    simcord_env: simcord.Env, make_bot: Callable[..., PromptWardenBot]
) -> None:
    w = await world(simcord_env)
    backend = simcord_env.backend
    backend.create_message(w.channel.id, w.member.id, NUDE, broadcast=False)
    await simcord_env.advance_time(25 * 3600)  # older than the default 24 h window
    backend.create_message(w.channel.id, w.member.id, GORE, broadcast=False)

    await simcord_env.restart_bot(make_bot())

    assert [i.verdict.value for i in await w.incidents()] == ["warn"]
    assert NUDE in w.messages()


@BOTH_BOT_BACKENDS
async def test_actions_that_failed_are_retried_when_the_message_is_seen_again(
    simcord_env: simcord.Env,
) -> None:
    w = await world(simcord_env)
    w.env.inject_error("*", "*", status=500, times=None)
    sent = await w.member.send(w.channel, NUDE)
    w.env.backend.faults.clear()

    await w.member.edit(sent, NUDE + " --s 250")  # seen again: the job is not new

    assert w.messages() == []
    [incident] = await w.incidents()
    records = await w.bot.storage.list_action_outcomes(w.guild.id, incident.id)
    assert [(r.action, r.outcome) for r in records if r.action == "delete"] == [
        ("delete", "failed"),
        ("delete", "done"),
    ]
    assert len(w.dms()) == 1 and len(w.modlog_entries()) == 1
    assert await w.points() == 2  # the strike was not added twice


async def test_a_burst_of_generator_messages_gets_one_incident_per_violating_job(
    simcord_env: simcord.Env,
) -> None:
    """Hundreds of events delivered before the bot runs: the queue keeps up, nothing twice."""
    w = await world(simcord_env)
    channels = [w.channel]
    for n in range(2):
        extra = w.guild.create_text_channel(f"gen-{n}")
        await w.bot.storage.add_watched_channel(w.guild.id, extra.id)
        channels.append(extra)
    screening(w.bot).states.invalidate(w.guild.id)
    requesters = [w.guild.add_member(w.env.create_user(f"user{n}")) for n in range(10)]
    backend = simcord_env.backend
    violating = 0
    for n in range(300):
        who = requesters[n % len(requesters)]
        bad = n % 50 == 7
        violating += bad
        text = f"a gruesome scene number {n}" if bad else f"a calm lake at dawn number {n}"
        for status in ("(Waiting to start)", "(fast)"):  # start message and result
            backend.create_message(
                channels[n % 3].id, w.generator.id, f"**{text}** - <@{who.id}> {status}"
            )
    await simcord_env.settle(timeout=60)

    incidents = await w.bot.storage.find_incidents(w.guild.id, limit=500)
    assert len(incidents) == violating == 6
    assert len({i.job_key for i in incidents}) == violating
    assert len(w.modlog_entries()) == violating
    assert sum(len(r.user.dm_channel.history()) for r in requesters) == violating


@BOTH_BOT_BACKENDS
async def test_a_guild_can_have_prompts_with_personal_information_removed(
    simcord_env: simcord.Env,
) -> None:
    w = await world(simcord_env)
    await w.bot.storage.set_enforcement_config(w.guild.id, {"delete_personal_info": True})
    screening(w.bot).states.invalidate(w.guild.id)

    await w.member.send(w.channel, "my phone is 555-123-4567, paint it on a cake")

    assert w.messages() == []
    [dm] = w.dms()
    assert "(phone)" in dm.content and "was removed" in dm.content
    assert "555-123-4567" not in dm.content
    [incident] = await w.incidents()
    assert incident.action == "remind+delete"
    assert incident.prompt_excerpt == "my phone is [phone], paint it on a cake"
    assert await w.points() == 0


async def test_an_incident_cut_short_by_a_stop_is_finished_on_restart(
    simcord_env: simcord.Env, make_bot: Callable[..., PromptWardenBot]
) -> None:
    """The state a kill leaves right after the delete: the incident recorded, the message
    gone (so never seen again), the delete the only outcome written."""
    w = await world(simcord_env)
    storage = simcord_env.bot.storage  # type: ignore[attr-defined]
    gone = discord.utils.time_snowflake(simcord_env.now())
    incident_id, _ = await storage.record_incident(
        guild_id=w.guild.id,
        channel_id=w.channel.id,
        message_id=gone,
        user_id=w.member.id,
        prompt_excerpt=NUDE,
        categories=["sexual"],
        severity=Severity.HIGH,
        verdict=Verdict.BLOCK,
        matches=[],
        action="block",
        created_at=simcord_env.now(),
    )
    await storage.record_action_outcome(w.guild.id, incident_id, "delete", "done")

    await simcord_env.restart_bot(make_bot())

    storage = simcord_env.bot.storage  # type: ignore[attr-defined]
    records = await storage.list_action_outcomes(w.guild.id, incident_id)
    assert sorted((r.action, r.outcome) for r in records) == [
        ("delete", "done"),  # not tried again
        ("dm_warning", "done"),
        ("modlog", "done"),
        ("strike", "done"),
    ]
    assert len(w.dms()) == 1 and len(w.modlog_entries()) == 1

    await simcord_env.restart_bot(make_bot())  # settled: nothing happens again
    assert len(w.dms()) == 1 and len(w.modlog_entries()) == 1
    assert len(await storage.find_incidents(w.guild.id)) == 1


async def test_a_new_message_is_judged_on_the_facts_discord_py_would_give(
    simcord_env: simcord.Env,
) -> None:
    """A new message is screened from its gateway payload, before (and mostly without)
    a discord.Message: its facts must be those of the Message built from it, for every
    kind of author and channel the watcher tells apart."""
    w = await world(simcord_env)
    compared: list[tuple[MessageFacts | None, MessageFacts | None]] = []
    w.bot.message_hooks.append(lambda a: compared.append((a.facts, message_facts(a.message))))
    simcord_env.backend.create_thread(w.channel.id, "variations", w.member.id)
    [thread] = w.channel.threads
    hook = w.guild.create_webhook(w.channel, "Feed")
    other = w.guild.add_member(w.env.create_user("Some Bot", bot=True))

    await w.member.send(w.channel, CAT)
    await w.member.send(thread, NUDE)
    await w.job(f"**{CAT}** - <@{w.member.id}> (fast)")
    await hook.send(CAT)
    await other.send(w.channel, CAT)

    for from_payload, from_message in compared:
        assert from_payload == from_message  # None for a DM, as for the bot's own warnings
    me = w.bot.user
    assert me is not None
    # The five sent above, after the thread's own "thread created" message.
    theirs = [f for f, _ in compared if f is not None and f.author_id != me.id][-5:]
    assert [f.author_is_bot for f in theirs] == [False, False, True, theirs[3].author_is_bot, True]
    assert [f.webhook_id is not None for f in theirs] == [False, False, False, True, False]
    assert theirs[1].channel_chain[:2] == (thread.id, w.channel.id)
