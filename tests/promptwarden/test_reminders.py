"""Private-mode reminders decided in memory (promptwarden.reminders through the privacy
cog), on the real bot against SimCord and a real SQLite file: what an allowed prompt
costs the database (counted with sqlite3's trace callback), first reminders, opt-outs,
erasure, a crash before the batch is saved, and a stop with prompts in flight."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import discord
import pytest
import simcord

from cogs._facts import Arrival
from discordbot import PromptWardenBot
from promptwarden.privacy import PRIVATE_MODE
from promptwarden.reminders import ReminderTable
from promptwarden.storage import ReminderRecord, Storage
from promptwarden.storage.backends import SQLiteBackend
from tests.helpers import CAT, DAY, DOG, GUILD_A, GUILD_B
from tests.helpers import privacy_world as world


@contextlib.asynccontextmanager
async def traced(bot: PromptWardenBot) -> AsyncIterator[list[str]]:
    """Every SQL statement the bot's database connection runs meanwhile."""
    backend = bot.storage.backend
    assert isinstance(backend, SQLiteBackend)
    conn = backend._connection().raw  # the aiosqlite connection; its hook runs in its thread
    seen: list[str] = []
    lock = threading.Lock()

    def trace(statement: str) -> None:
        with lock:
            seen.append(statement)

    await conn.set_trace_callback(trace)
    try:
        yield seen
    finally:
        if backend._conn is not None:  # not closed meanwhile
            await conn.set_trace_callback(None)  # type: ignore[arg-type]


async def test_allowed_prompts_of_reminded_members_run_no_sql_statement(
    simcord_env: simcord.Env,
) -> None:
    w = await world(simcord_env)
    other = w.guild.add_member(simcord_env.create_user("cy"))
    await w.member.send(w.channel, CAT)
    await other.send(w.channel, CAT)
    await simcord_env.advance_time(60)  # the sent reminders are saved meanwhile

    async with traced(w.bot) as statements:
        for n in range(20):
            await (w.member if n % 2 else other).send(w.channel, f"{DOG} number {n}")

    print(statements)
    assert statements == []
    assert len(w.reminders()) == 1 and len(w.reminders(other)) == 1


async def test_a_reminder_the_dm_budget_held_back_costs_no_query_on_the_next_prompts(
    simcord_env: simcord.Env,
) -> None:
    w = await world(simcord_env)
    await w.bot.storage.set_privacy_config(w.guild.id, {"dm_per_minute": 1})
    await w.settings_changed()
    other = w.guild.add_member(simcord_env.create_user("cy"))
    await w.member.send(w.channel, CAT)  # reminded: the minute's one DM
    await other.send(w.channel, CAT)  # held back by the budget
    assert len(w.reminders()) == 1 and w.reminders(other) == []

    async with traced(w.bot) as statements:
        for n in range(5):
            await other.send(w.channel, f"{DOG} number {n}")
    assert statements == []
    assert w.reminders(other) == []

    await simcord_env.advance_time(61)  # a new minute, a new budget
    await other.send(w.channel, DOG)
    assert len(w.reminders(other)) == 1


async def test_a_burst_of_first_prompts_gets_each_member_exactly_one_reminder(
    simcord_env: simcord.Env,
) -> None:
    w = await world(simcord_env)
    second = w.guild.create_text_channel("imagine-2")
    await w.bot.storage.add_watched_channel(w.guild.id, second.id)
    await w.bot.storage.set_privacy_config(w.guild.id, {"dm_per_minute": 60})
    await w.settings_changed()
    newcomers = [w.guild.add_member(simcord_env.create_user(f"new{i}")) for i in range(12)]
    backend = simcord_env.backend
    # All at once, in two channels (handled side by side), three prompts each.
    for n in range(3):
        for member in newcomers:
            channel = second if n % 2 else w.channel
            backend.create_message(channel.id, member.id, f"{CAT} take {n}")
    await simcord_env.settle()

    assert [len(w.reminders(m)) for m in newcomers] == [1] * len(newcomers)
    await simcord_env.advance_time(60)
    for member in newcomers:
        [record] = (await w.bot.storage.export_member_data(member.id)).reminders
        assert record.kind == "private_mode" and record.guild_id == w.guild.id


async def test_opting_out_applies_to_the_next_due_reminder_without_a_query(
    simcord_env: simcord.Env,
) -> None:
    w = await world(simcord_env)
    await w.member.send(w.channel, CAT)
    await simcord_env.advance_time(31 * DAY)  # a second reminder is due now
    await w.member.slash(w.channel, "privacy reminders", setting="off")

    async with traced(w.bot) as statements:
        await w.member.send(w.channel, DOG)
    assert statements == []
    assert len(w.reminders()) == 1

    await w.member.slash(w.channel, "privacy reminders", setting="on")
    await w.member.send(w.channel, "a fox in the snow")
    assert len(w.reminders()) == 2


async def test_an_opt_out_saved_elsewhere_is_read_before_a_reminder_goes_out(
    simcord_env: simcord.Env,
) -> None:
    # Another process of a cluster (a shard serving another guild) records the choice.
    w = await world(simcord_env)
    await w.member.send(w.channel, CAT)
    await w.bot.storage.set_reminders_enabled(w.member.id, False)
    await simcord_env.advance_time(31 * DAY)

    await w.member.send(w.channel, DOG)

    assert len(w.reminders()) == 1


async def test_a_crash_before_the_save_costs_at_most_one_extra_reminder(
    simcord_env: simcord.Env, make_bot: Callable[..., PromptWardenBot]
) -> None:
    w = await world(simcord_env)
    await w.member.send(w.channel, CAT)
    assert len(w.reminders()) == 1

    # Gone without a stop before the batch was saved: the reminder is forgotten.
    await simcord_env.restart_bot(make_bot())
    for n in range(3):
        await w.member.send(w.channel, f"{DOG} {n}")
    assert len(w.reminders()) == 2  # one extra, not one per prompt

    await simcord_env.advance_time(60)  # saved this time
    await simcord_env.restart_bot(make_bot())
    await w.member.send(w.channel, "a fox in the snow")
    assert len(w.reminders()) == 2


async def test_a_clean_stop_saves_the_reminders_and_nothing_runs_after_it(
    simcord_env: simcord.Env,
    make_bot: Callable[..., PromptWardenBot],
    caplog: pytest.LogCaptureFixture,
) -> None:
    w = await world(simcord_env)
    late = w.guild.add_member(simcord_env.create_user("late"))
    await w.member.send(w.channel, CAT)
    [sent] = [m for m in w.channel.history() if m.content == CAT]
    bot = w.bot
    channel = bot.get_channel(w.channel.id)
    assert isinstance(channel, discord.TextChannel)
    message = await channel.fetch_message(sent.id)
    async with traced(bot) as statements:
        # A prompt the watcher handed over just as the stop begins: its reminder task
        # runs only after the cogs are unloaded and the database is closed.
        bot.prompt_seen(Arrival.of(message), late.id)
        with caplog.at_level(logging.WARNING):
            await bot.close()
            await simcord_env.settle()
        saved = list(statements)
    assert [s for s in saved if s.startswith("INSERT INTO reminders_sent")] != []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

    await simcord_env.restart_bot(make_bot())
    await w.member.send(w.channel, DOG)
    assert len(w.reminders()) == 1 and w.reminders(late) == []


async def test_erasure_drops_the_unsaved_reminders_too(simcord_env: simcord.Env) -> None:
    w = await world(simcord_env)
    await w.member.send(w.channel, CAT)  # reminded; not saved yet
    asked = await w.member.slash(w.channel, "privacy delete")
    assert asked.response is not None
    done = await w.member.click(asked.response, label="Delete my data")
    assert done.response is not None and "Done" in done.response.content

    await simcord_env.advance_time(60)  # a save runs: nothing of theirs comes back
    assert (await w.bot.storage.export_member_data(w.member.id)).reminders == ()
    await w.member.send(w.channel, DOG)  # no history any more: reminded as a newcomer
    assert len(w.reminders()) == 2


# ---------------------------------------------------------------- the table on its own

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
MONTH = timedelta(days=30)
DAY_DELTA = timedelta(days=1)


async def test_newcomers_are_read_together_and_claimed_once(storage: Storage) -> None:
    await storage.save_reminders([ReminderRecord(GUILD_A, 7, PRIVATE_MODE, NOW - DAY_DELTA)])
    await storage.set_reminders_enabled(8, False)
    table = ReminderTable(storage, PRIVATE_MODE)
    users = [7, 8, *range(100, 150)]

    claims = await asyncio.gather(
        *(table.claim(GUILD_A, u, interval=MONTH, now=NOW) for u in users + users)
    )

    claimed = sorted(c.user_id for c in claims if c is not None)
    assert claimed == list(range(100, 150))  # each once; 7 was reminded, 8 opted out
    assert table.reads <= 2  # one read of the sent times and one of the choices
    for claim in claims:
        if claim is not None:
            table.confirm(claim)
    assert await table.flush() == 50
    sent = await storage.get_reminders_sent(GUILD_A, PRIVATE_MODE, users)
    assert sent == {7: NOW - DAY_DELTA} | dict.fromkeys(range(100, 150), NOW)


async def test_memory_stays_bounded_and_a_dropped_member_is_not_reminded_again(
    storage: Storage,
) -> None:
    table = ReminderTable(storage, PRIVATE_MODE, max_members=3, max_entries=5)
    for guild_id in (GUILD_A, GUILD_B):
        for user_id in range(10):
            claim = await table.claim(guild_id, user_id, interval=MONTH, now=NOW)
            assert claim is not None
            table.confirm(claim)
            assert len(table) <= 5
    # Dropped from memory long ago, some saved and some not: none is due again.
    assert table.unsaved == 20
    await table.flush()
    for guild_id in (GUILD_A, GUILD_B):
        for user_id in range(10):
            assert await table.claim(guild_id, user_id, interval=MONTH, now=NOW + DAY_DELTA) is None
    unsaved = await table.claim(GUILD_A, 99, interval=MONTH, now=NOW)
    assert unsaved is not None
    table.confirm(unsaved)
    for user_id in range(10):  # push 99 out of memory before its save
        await table.claim(GUILD_A, user_id, interval=MONTH, now=NOW)
    assert await table.claim(GUILD_A, 99, interval=MONTH, now=NOW + DAY_DELTA) is None


async def test_a_released_claim_lets_the_next_prompt_try_and_a_stopped_table_reads_nothing(
    storage: Storage,
) -> None:
    table = ReminderTable(storage, PRIVATE_MODE)
    claim = await table.claim(GUILD_A, 1, interval=MONTH, now=NOW)
    assert claim is not None
    assert await table.claim(GUILD_A, 1, interval=MONTH, now=NOW) is None  # reserved
    table.release(claim)  # e.g. the DM budget held it back
    again = await table.claim(GUILD_A, 1, interval=MONTH, now=NOW + DAY_DELTA)
    assert again is not None
    table.confirm(again)

    table.stop()
    assert await table.claim(GUILD_A, 2, interval=MONTH, now=NOW) is None
    assert table.reads == 2  # the first claim's read only (sent times and choices)
    await table.close()
    assert await storage.get_reminders_sent(GUILD_A, PRIVATE_MODE, [1, 2]) == {1: NOW + DAY_DELTA}
