"""`/privacy export` spends one of the guild's DMs a minute, which warnings need, so a
member gets one a day per server; the refusal says when the next is possible, and a
restart does not reset it."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import simcord

from discordbot import PromptWardenBot
from tests.helpers import DAY, close_dms
from tests.helpers import privacy_world as world

RELATIVE_TIME = re.compile(r"<t:(\d+):R>")


def exports(who: simcord.MemberActor) -> int:
    """How many data files the member received by DM."""
    return sum(1 for m in who.user.dm_channel.history() if m.attachments)


def next_possible(reply: str) -> datetime:
    """The moment a refusal names, as Discord's relative timestamp renders it."""
    found = RELATIVE_TIME.search(reply)
    assert found, f"no <t:...:R> timestamp in {reply!r}"
    return datetime.fromtimestamp(int(found.group(1)), UTC)


async def test_a_second_export_the_same_day_is_refused_with_the_time_of_the_next(
    simcord_env: simcord.Env,
) -> None:
    w = await world(simcord_env)
    asked_at = simcord_env.now()
    first = await w.member.slash(w.channel, "privacy export")
    assert "I sent you a DM" in first.response.content

    await simcord_env.advance_time(3600)
    again = await w.member.slash(w.channel, "privacy export")

    assert again.ephemeral and "once a day" in again.response.content
    next_at = next_possible(again.response.content)
    assert abs(next_at - (asked_at + timedelta(days=1))) < timedelta(seconds=2)
    assert exports(w.member) == 1  # no second DM spent
    # Someone else is not held back by it.
    other = await w.moderator.slash(w.channel, "privacy export")
    assert "I sent you a DM" in other.response.content

    await simcord_env.advance_time(DAY)
    later = await w.member.slash(w.channel, "privacy export")
    assert "I sent you a DM" in later.response.content
    assert exports(w.member) == 2


async def test_a_restart_does_not_reset_the_limit(
    simcord_env: simcord.Env, make_bot: Callable[..., PromptWardenBot]
) -> None:
    w = await world(simcord_env)
    await w.member.slash(w.channel, "privacy export")
    await simcord_env.restart_bot(make_bot())

    again = await w.member.slash(w.channel, "privacy export")
    assert "once a day" in again.response.content
    assert exports(w.member) == 1


async def test_closed_dms_cost_a_short_wait_not_a_day(simcord_env: simcord.Env) -> None:
    w = await world(simcord_env)
    close_dms(simcord_env, w.member)  # the next DM fails with 403, as for closed DMs
    tried_at = simcord_env.now()
    closed = await w.member.slash(w.channel, "privacy export")
    assert "direct messages are closed" in closed.response.content
    retry_at = next_possible(closed.response.content)
    assert abs(retry_at - (tried_at + timedelta(minutes=10))) < timedelta(seconds=2)

    too_soon = await w.member.slash(w.channel, "privacy export")
    assert "once a day" in too_soon.response.content

    await simcord_env.advance_time(10 * 60)
    opened = await w.member.slash(w.channel, "privacy export")
    assert "I sent you a DM" in opened.response.content
    assert exports(w.member) == 1


async def test_an_export_held_back_by_the_dm_budget_can_be_asked_again_at_once(
    simcord_env: simcord.Env,
) -> None:
    w = await world(simcord_env)
    await w.admin.slash(w.channel, "reminders off")
    await w.admin.slash(w.channel, "reminders dm-limit", per_minute=1)
    await w.moderator.slash(w.channel, "privacy export")  # spends this minute's one DM

    held = await w.member.slash(w.channel, "privacy export")
    assert "try again in a minute" in held.response.content
    await simcord_env.advance_time(60)
    sent = await w.member.slash(w.channel, "privacy export")
    assert "I sent you a DM" in sent.response.content
