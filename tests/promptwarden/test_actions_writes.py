"""What a violating message costs the database, counted on a real SQLite file with
sqlite3's trace callback while the real bot handles it against SimCord: the incident is
written with its strike in one transaction before any Discord call, and the outcomes of
the steps that follow are written behind, many incidents' together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
import simcord

from discordbot import PromptWardenBot
from promptwarden.storage.backends import SQLiteBackend
from tests.helpers import NUDE, world


@dataclass(frozen=True)
class Statement:
    sql: str
    requests: int  # REST calls the bot had made when the statement ran


@contextlib.asynccontextmanager
async def traced(bot: PromptWardenBot, env: simcord.Env) -> AsyncIterator[list[Statement]]:
    """Every SQL statement the bot's database connection runs meanwhile, each with how
    many Discord calls had been made by then."""
    backend = bot.storage.backend
    assert isinstance(backend, SQLiteBackend)
    conn = backend._connection().raw  # the aiosqlite connection; its hook runs in its thread
    seen: list[Statement] = []
    lock = threading.Lock()
    requests = env.http_requests

    def trace(sql: str) -> None:
        with lock:
            seen.append(Statement(sql, len(requests)))

    await conn.set_trace_callback(trace)
    try:
        yield seen
    finally:
        if backend._conn is not None:
            await conn.set_trace_callback(None)  # type: ignore[arg-type]


def transactions(statements: list[Statement]) -> list[list[Statement]]:
    """The write transactions, each from its BEGIN to its COMMIT."""
    found: list[list[Statement]] = []
    current: list[Statement] | None = None
    for statement in statements:
        if statement.sql.startswith("BEGIN"):
            current = []
        elif current is not None:
            if statement.sql == "COMMIT":
                found.append(current)
                current = None
            else:
                current.append(statement)
    return found


def writes_to(transaction: list[Statement], table: str, *, updates: bool = True) -> int:
    kinds = (f"INSERT INTO {table} ", f"UPDATE {table} ") if updates else (f"INSERT INTO {table} ",)
    return sum(s.sql.startswith(kinds) for s in transaction)


async def test_a_violation_is_recorded_with_its_strike_in_one_transaction_before_discord(
    simcord_env: simcord.Env,
) -> None:
    w = await world(simcord_env)
    await w.member.send(w.channel, "a cat in a hat")  # the guild's settings are cached now
    before = len(simcord_env.http_requests)

    async with traced(w.bot, simcord_env) as statements:
        await w.member.send(w.channel, NUDE)
        await simcord_env.settle()

    assert NUDE not in w.messages() and len(w.modlog_entries()) == 1 and len(w.dms()) == 1
    first, *later = transactions(statements)
    # The incident, its strike, the strike's outcome and the warning's slot in the DM
    # budget (taken, and noted with the incident for a resume), before any Discord call.
    assert writes_to(first, "incidents") == 1
    assert writes_to(first, "strikes") == 1
    assert writes_to(first, "incident_actions") == 2
    assert writes_to(first, "dm_budget") == 1
    assert all(s.requests == before for s in first)
    assert [s for s in statements[: statements.index(first[-1])] if s.requests > before] == []
    # Then the outcomes of delete, DM and mod-log entry with its ids (it was 7
    # transactions more, and 27 statements in all).
    assert len(later) <= 3
    assert all(writes_to(x, "incident_actions") for x in later)
    assert len(statements) <= 20
    [incident] = await w.incidents()
    assert incident.modlog_message_id == w.modlog_entries()[0].id
    assert await w.outcomes(incident) == {
        "strike": "done",
        "dm_slot": "done",
        "delete": "done",
        "dm_warning": "done",
        "modlog": "done",
    }


async def test_a_burst_of_violations_commits_their_outcomes_together(
    simcord_env: simcord.Env,
) -> None:
    w = await world(simcord_env)
    await w.bot.storage.set_privacy_config(
        w.guild.id, {"reminders_enabled": False, "dm_per_minute": 60}
    )
    channels = [w.channel]
    for n in range(3):
        channels.append(w.guild.create_text_channel(f"imagine-{n}"))
        await w.bot.storage.add_watched_channel(w.guild.id, channels[-1].id)
    members = [w.guild.add_member(simcord_env.create_user(f"m{i}")) for i in range(24)]
    await w.member.send(w.channel, "a cat in a hat")  # settings cached
    backend = simcord_env.backend

    async with traced(w.bot, simcord_env) as statements:
        for n, member in enumerate(members):
            backend.create_message(channels[n % len(channels)].id, member.id, f"{NUDE} {n}")
        await simcord_env.settle()

    incidents = await w.incidents()
    assert len(incidents) == len(members) and len(w.modlog_entries()) == len(members)
    for incident in incidents:
        outcomes = await w.outcomes(incident)
        assert set(outcomes) == {"strike", "dm_slot", "delete", "dm_warning", "modlog"}
        assert set(outcomes.values()) == {"done"}
    written = transactions(statements)
    # One transaction records a channel's queued incidents with their strikes and their
    # DMs' slots (it was one per incident); the outcomes of all of them go in fewer
    # transactions than there are incidents.
    recorded = [x for x in written if writes_to(x, "incidents", updates=False)]
    batches = [x for x in written if writes_to(x, "incident_actions") and x not in recorded]
    assert len(channels) <= len(recorded) <= len(members) // 2
    assert len(batches) < len(members)  # each holds several incidents' outcomes
    assert len(written) < 2 * len(members)  # it was 8 a violation
    # It was 27; 13 with the DM slot's row (one more row of the incident's INSERT batch,
    # which the trace counts as a statement).
    assert len(statements) <= 13 * len(members)


async def test_a_clean_stop_commits_the_outcomes_written_behind_before_the_database_closes(
    simcord_env: simcord.Env,
    make_bot: Callable[..., PromptWardenBot],
    caplog: pytest.LogCaptureFixture,
) -> None:
    w = await world(simcord_env)
    members = [w.guild.add_member(simcord_env.create_user(f"m{i}")) for i in range(6)]
    await w.member.send(w.channel, "a cat in a hat")  # settings cached
    bot = w.bot
    for n, member in enumerate(members):
        simcord_env.backend.create_message(w.channel.id, member.id, f"{NUDE} {n}")
    for _ in range(100_000):  # stop with outcomes still queued
        if len(bot.actions.writes):
            break
        await asyncio.sleep(0)
    assert len(bot.actions.writes)

    with caplog.at_level(logging.WARNING):
        await bot.close()
        await simcord_env.settle()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(bot.actions.writes) == 0
    w.bot = make_bot()
    await simcord_env.restart_bot(w.bot)
    await simcord_env.settle()

    # Each violation handled once: what the stop cut short is finished by the next
    # start, and nothing done before it is done again.
    incidents = await w.incidents()
    assert len(incidents) == len(members)
    for incident in incidents:
        assert await w.outcomes(incident) == {
            "strike": "done",
            "dm_slot": "done",
            "delete": "done",
            "dm_warning": "done",
            "modlog": "done",
        }
    assert [len(w.dms(m)) for m in members] == [1] * len(members)
    assert len(w.modlog_entries()) == len(members)
